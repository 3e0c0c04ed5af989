"""pytest plugin loaded before Django is set up (``-p`` in ``pytest.ini``): the environment
the suite runs in, as a deployment would set it.

- ``DEBUG`` stays off (the default), so a ``SECRET_KEY`` is needed: a fixed test-only one.
- The outbound address policy denies loopback by default; the suite's upstreams all live on
  127.0.0.1, so it is allowed here (as ``make run`` does for its sample upstream).

- No ``.env`` file is read (``PULP_DOWNLOADS_ENV_FILE`` is empty): the checkout's own, which
  ``make run`` writes, must not change what the suite tests. Tests of the file name one.

Values already in the environment win (the ``.env`` rule excepted), and subprocesses started
by tests inherit these.
"""
import os

os.environ["PULP_DOWNLOADS_ENV_FILE"] = ""

os.environ.setdefault("SECRET_KEY", "pulp-downloads-test-suite-only-" + "k" * 32)
os.environ.setdefault("PULP_DOWNLOADS_ALLOWED_NETWORKS", "127.0.0.0/8")

# Metrics of the suite's processes (and of the subprocesses it starts) go to a directory of
# their own, not to the checkout's var/metrics.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pulp-downloads-metrics-")
