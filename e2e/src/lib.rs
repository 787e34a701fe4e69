//! End-to-end tests of debugsession-operator against a real cluster (see tests/).
