"""Service standards (SLA policies and clocks), communication standards, customer ratings and alerts."""
