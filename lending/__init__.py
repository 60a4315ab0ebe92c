"""The bank's loan business: products, village credit files, credit lines and
applications. Plain Python; callers pass a SQLAlchemy session."""
