import pytest


@pytest.fixture(autouse=True)
def own_job_slots(tmp_path, monkeypatch):
    """Each unit test gets empty job slots (a job another test left running can't fill them)."""
    monkeypatch.setenv("BPTTLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPTTLAB_REDIS_URL", raising=False)
