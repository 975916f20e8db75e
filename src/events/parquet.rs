//! Exported events as a Parquet file: the same fields as the NDJSON export, typed
//! (timestamps as UTC microseconds, the payload as a JSON column), written a row group
//! at a time, so memory stays bounded whatever the export's size.

use std::io::Write;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::Record;

/// Rows held before they are written out as one row group.
const ROW_GROUP: usize = 32_768;

const SCHEMA: &str = "
message event {
    required int64 sequence;
    required binary event_id (STRING);
    required binary type (STRING);
    required int32 schema_version;
    optional binary actor (STRING);
    required binary aggregate_type (STRING);
    required binary aggregate_id (STRING);
    required int64 occurred_at (TIMESTAMP(MICROS, true));
    required int64 stored_at (TIMESTAMP(MICROS, true));
    required binary correlation_id (STRING);
    optional binary causation_id (STRING);
    required binary payload (JSON);
}";

/// Writes records to a Parquet file as they come.
pub struct ParquetWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    rows: Columns,
}

/// One row group's worth of rows, by column.
#[derive(Default)]
struct Columns {
    sequence: Vec<i64>,
    event_id: Vec<ByteArray>,
    event_type: Vec<ByteArray>,
    schema_version: Vec<i32>,
    actor: Optional,
    aggregate_type: Vec<ByteArray>,
    aggregate_id: Vec<ByteArray>,
    occurred_at: Vec<i64>,
    stored_at: Vec<i64>,
    correlation_id: Vec<ByteArray>,
    causation_id: Optional,
    payload: Vec<ByteArray>,
}

/// An optional column: the values present, and a definition level per row.
#[derive(Default)]
struct Optional {
    values: Vec<ByteArray>,
    levels: Vec<i16>,
}

impl Optional {
    fn push(&mut self, value: Option<String>) {
        self.levels.push(i16::from(value.is_some()));
        if let Some(value) = value {
            self.values.push(ByteArray::from(value.into_bytes()));
        }
    }
}

fn text(value: impl Into<String>) -> ByteArray {
    ByteArray::from(value.into().into_bytes())
}

fn micros(time: time::OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

impl<W: Write + Send> ParquetWriter<W> {
    pub fn new(out: W) -> anyhow::Result<Self> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let properties = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_created_by("natter events export".into())
                .build(),
        );
        Ok(Self {
            writer: SerializedFileWriter::new(out, schema, properties)?,
            rows: Columns::default(),
        })
    }

    pub fn write(&mut self, record: &Record<'_>) -> anyhow::Result<()> {
        let rows = &mut self.rows;
        rows.sequence.push(i64::try_from(record.sequence)?);
        rows.event_id.push(text(record.event_id.to_string()));
        rows.event_type.push(text(record.event_type));
        rows.schema_version
            .push(i32::try_from(record.schema_version)?);
        rows.actor.push(record.actor.map(|actor| actor.to_string()));
        rows.aggregate_type.push(text(record.aggregate_type));
        rows.aggregate_id.push(text(record.aggregate_id));
        rows.occurred_at.push(micros(record.occurred_at));
        rows.stored_at.push(micros(record.stored_at));
        rows.correlation_id
            .push(text(record.correlation_id.to_string()));
        rows.causation_id
            .push(record.causation_id.map(|cause| cause.to_string()));
        rows.payload.push(text(record.payload.to_string()));
        if rows.sequence.len() >= ROW_GROUP {
            self.flush_row_group()?;
        }
        Ok(())
    }

    /// Writes what is held and the file's footer.
    pub fn finish(mut self) -> anyhow::Result<W> {
        self.flush_row_group()?;
        Ok(self.writer.into_inner()?)
    }

    fn flush_row_group(&mut self) -> anyhow::Result<()> {
        if self.rows.sequence.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let mut group = self.writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            match index {
                0 => column
                    .typed::<Int64Type>()
                    .write_batch(&rows.sequence, None, None)?,
                1 => column
                    .typed::<ByteArrayType>()
                    .write_batch(&rows.event_id, None, None)?,
                2 => column
                    .typed::<ByteArrayType>()
                    .write_batch(&rows.event_type, None, None)?,
                3 => column
                    .typed::<Int32Type>()
                    .write_batch(&rows.schema_version, None, None)?,
                4 => column.typed::<ByteArrayType>().write_batch(
                    &rows.actor.values,
                    Some(&rows.actor.levels),
                    None,
                )?,
                5 => {
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&rows.aggregate_type, None, None)?
                }
                6 => column
                    .typed::<ByteArrayType>()
                    .write_batch(&rows.aggregate_id, None, None)?,
                7 => column
                    .typed::<Int64Type>()
                    .write_batch(&rows.occurred_at, None, None)?,
                8 => column
                    .typed::<Int64Type>()
                    .write_batch(&rows.stored_at, None, None)?,
                9 => {
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&rows.correlation_id, None, None)?
                }
                10 => column.typed::<ByteArrayType>().write_batch(
                    &rows.causation_id.values,
                    Some(&rows.causation_id.levels),
                    None,
                )?,
                11 => column
                    .typed::<ByteArrayType>()
                    .write_batch(&rows.payload, None, None)?,
                _ => anyhow::bail!("the Parquet schema has more columns than the writer"),
            };
            column.close()?;
            index += 1;
        }
        group.close()?;
        Ok(())
    }
}
