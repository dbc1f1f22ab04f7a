"""One package per channel type; each registers its adapter with @register."""
