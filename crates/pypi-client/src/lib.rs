//! pypi-client
