import asyncio, shutil, tempfile
from pathlib import Path
from tests.test_reports_property import scenario
import tests.test_reports_api as api
orig = api.snapshot
async def snap(rt):
    f, r = await orig(rt)
    print("ROLLS", [x for x in r if x[1] == "resolutions"]); print("FACTS", f)
    return f, r
import tests.test_reports_property as tp
tp.snapshot = snap
def test_dbg(database_template):
    ops=[("write", "alice", "hello"), ("assign", "alice", 0), ("reply", "alice", 0), ("tick", 3600, 0),
    ("resolve", "alice", 0), ("drain", "", 0), ("tick", 3600, 0), ("write", "alice", "hello"), ("drain", "", 0)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k.db"; shutil.copy(database_template, path)
        asyncio.run(scenario(f"sqlite+aiosqlite:///{path}", Path(tmp), ops))
