"""Campaign dry-run benchmark (issue 8): the staff page's simulator for one campaign.

Setup (not timed): the outreach planning portfolio of `bench/outreach_plan.py` (N
accounts, all enrolled in one 3-channel cadence and due now) on SQLite.

Timed, in the same run: the baseline, `build_plan` for the whole portfolio (what the
nightly planner does), then `cadence_service.dry_run` for the campaign with a sample of
200 and of 2,000 accounts (the page's bound). A dry run's fixed cost is the rolled-back
savepoint work proportional to the due set (enrolling newly eligible accounts, setting
the other due enrollments aside); the planner then decides only the sample. Wall and CPU
seconds (this process) and the load average are printed, since the machine is shared.

Run: .venv/bin/python bench/campaign_dry_run.py [--accounts N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import select  # noqa: E402

from carecollect.db import Database  # noqa: E402
from carecollect.outreach.cadence import cadence_service  # noqa: E402
from carecollect.outreach.cadence_models import Campaign  # noqa: E402
from carecollect.outreach.planner import build_plan  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    import outreach_plan

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()
    result: dict[str, Any] = {"accounts": args.accounts, "load_avg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dry.db"
        org_id, _ = outreach_plan.populate(path, args.accounts)
        db = Database(f"sqlite:///{path}")
        at = outreach_plan.AT
        with db.tenant_session(org_id) as session:
            campaign_id = session.scalars(select(Campaign.id)).one()
            wall, cpu = time.perf_counter(), _cpu()
            plan = build_plan(session, organization_id=org_id, at=at)
            result["baseline_build_plan_whole_portfolio"] = {
                "wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(_cpu() - cpu, 2),
                "rows": plan.frame.height}
            for sample in (200, 2_000):
                wall, cpu = time.perf_counter(), _cpu()
                run = cadence_service.dry_run(session, organization_id=org_id,
                                              campaign_id=campaign_id, at=at, sample=sample)
                result[f"dry_run_sample_{sample}"] = {
                    "wall_s": round(time.perf_counter() - wall, 2),
                    "cpu_s": round(_cpu() - cpu, 2), "simulated": len(run.rows),
                    "due": run.due_total, "outcomes": run.outcome_totals()}
            session.rollback()
        db.dispose()
    result["load_avg_after"] = os.getloadavg()
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
