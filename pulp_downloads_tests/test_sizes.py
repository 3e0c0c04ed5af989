"""The one size formatter of the admin, the command line and listings."""
import pytest

from pulp_downloads.sizes import exact_bytes, human_size


@pytest.mark.parametrize("count, text", [
    (None, "—"), (0, "0 bytes"), (1, "1 byte"), (999, "999 bytes"), (1000, "1.00 kB"),
    (9994, "9.99 kB"), (9995, "10.0 kB"), (99950, "100 kB"), (999499, "999 kB"),
    (999500, "1.00 MB"), (1357417, "1.36 MB"), (123456789012, "123 GB"),
])
def test_human_size(count, text):
    assert human_size(count) == text


def test_negative_size_is_a_bug():
    with pytest.raises(ValueError, match="-5"):
        human_size(-5)


def test_exact_bytes():
    assert exact_bytes(1357417) == "1,357,417 bytes"
    assert exact_bytes(1) == "1 byte"
