//! In-memory fakes of every port, for tests.
