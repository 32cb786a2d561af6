//! TraceQL: parser, evaluation over traces, TraceQL metrics.
