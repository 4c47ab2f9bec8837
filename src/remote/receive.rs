//! `POST /api/v1/write`: placeholder replaced below.
