"""A person's data: where every table keeps data about a contact (``registry``) and the export of all of it
(``export``). Erasure and retention are to read the same registry (docs/privacy.md)."""
