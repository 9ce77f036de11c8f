"""Storage: SQLAlchemy models, the database (SQLite or PostgreSQL) with its migrations, and blobs.

Also the profile index, kept in step with :class:`autovoice.profiles.ProfileStore` (which holds the data).
"""

from autovoice.storage.blobs import BlobStore, check_id
from autovoice.storage.db import Database, database_url
from autovoice.storage.profiles import ProfileIndex
from autovoice.storage.tables import FINAL_STATUSES, JOB_STATUSES, ApiKeyRow, Base, JobRow, ProfileRow

__all__ = [
    "FINAL_STATUSES",
    "JOB_STATUSES",
    "ApiKeyRow",
    "Base",
    "BlobStore",
    "Database",
    "JobRow",
    "ProfileIndex",
    "ProfileRow",
    "check_id",
    "database_url",
]
