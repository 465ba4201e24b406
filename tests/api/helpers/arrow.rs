//! Arrow IPC stream bodies, written with the same crates the server reads them with.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::writer::StreamWriter;

/// The media type of an Arrow IPC stream body.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// An Arrow IPC stream of one record batch per element of `batches`, each
/// a list of named columns (all batches with the same names and types).
pub fn arrow_stream(batches: &[Vec<(&str, ArrayRef)>]) -> Vec<u8> {
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|columns| RecordBatch::try_from_iter(columns.iter().cloned()).expect("a valid batch"))
        .collect();
    let schema = batches.first().expect("at least one batch").schema();
    write_stream(&schema, &batches)
}

/// `batches` written as an IPC stream with `schema`, unchecked (tests make
/// invalid batches with it).
pub fn write_stream(schema: &arrow_schema::SchemaRef, batches: &[RecordBatch]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, schema).expect("a writer");
    for batch in batches {
        writer.write(batch).expect("batch written");
    }
    writer.finish().expect("stream finished");
    drop(writer);
    out
}

/// A column from anything an Arrow array is built from.
pub fn column<A: arrow_array::Array + 'static>(array: A) -> ArrayRef {
    Arc::new(array)
}
