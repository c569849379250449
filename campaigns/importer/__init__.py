"""Contact CSV import: a campaign's contacts from a file people exported or typed.

* :mod:`~campaigns.importer.reader`: encoding and delimiter detection, chunked reading,
  spreadsheet row numbers.
* :mod:`~campaigns.importer.columns`: the mapping rules (phone, name, time zone columns;
  metadata keys).
* :mod:`~campaigns.importer.phones`: E.164 and time zones, with a fast path that gives the
  same answers as ``phonenumbers``.
* :mod:`~campaigns.importer.rows`: the per-row work, in worker processes for large files.
* :mod:`~campaigns.importer.dedupe`: duplicate numbers across the file in bounded memory.
* :mod:`~campaigns.importer.importer`: the one-transaction import (``create_campaign``,
  ``add_contacts``); its statements are in :mod:`storage.imports`.
* :mod:`~campaigns.importer.rejects` and :mod:`~campaigns.importer.dncfile`: the rejects
  file and do-not-call files.
"""
