//! RED metrics and the service graph from spans.
