"""Reports: KPI definitions, per-conversation facts, hourly rollups and the report API."""
