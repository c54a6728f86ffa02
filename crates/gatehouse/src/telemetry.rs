//! Logs and metrics. Logs go to stderr (stdout is the admin commands' output), as text
//! or JSON lines, filtered by `GATEHOUSE_LOG` (tracing's `EnvFilter` syntax).
//!
//! Log lines carry values a request chose (a claimed client id, say), so neither
//! format lets a value break out of its field: JSON strings are escaped by serde, and
//! the text format writes fields through [`EscapedFields`].

use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub mod batched;

pub use self::batched::{BatchedWriter, FlushGuard};

/// Starts logging; keep the returned guard alive until exit, it flushes the log.
///
/// Lines are written in batches by a thread of their own ([`batched`]), so a
/// request never waits on stderr: the audit line of every token costs a copy into
/// a buffer, not a system call.
pub fn init_logging(format: LogFormat) -> FlushGuard {
    let (writer, guard) = BatchedWriter::new(std::io::stderr());
    let filter = EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour_log(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    // A second initialisation (in a test process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(EscapedFields).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}

/// Whether the text log may colour its lines: only on a terminal, and not when
/// `NO_COLOR` is set to anything but the empty string (the convention that
/// variable stands for). A log captured through a pipe or a file gets no escape codes.
fn colour_log(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// The text format's fields, `name=value` separated by spaces, written so that no
/// value can end the line, pass for another field or reach a terminal as a control
/// sequence (a client id holding CR LF once forged an audit line).
///
/// A value is written bare when it holds only printable characters other than
/// whitespace, `"`, `\` and `=`; otherwise it is quoted, with `\`, `"` and every
/// control or invisible character escaped as Rust does (`\r`, `\n`, `\u{1b}`).
/// The empty value is `""`. The message stays bare, as a sentence, with the same
/// characters escaped. Field names are static, so they are written as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'w> MakeVisitor<Writer<'w>> for EscapedFields {
    type Visitor = EscapingVisitor<'w>;

    fn make_visitor(&self, writer: Writer<'w>) -> Self::Visitor {
        EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's or span's fields for [`EscapedFields`].
pub struct EscapingVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write_field(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // The `log` crate's metadata, already shown in the line's prefix.
        if name.starts_with("log.") {
            return;
        }
        self.result = self.try_write_field(name.strip_prefix("r#").unwrap_or(name), value);
    }

    fn try_write_field(&mut self, name: &str, value: &str) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if name == "message" {
            return write_escaped(&mut self.writer, value);
        }
        if self.writer.has_ansi_escapes() {
            // Italic name, dimmed `=`: what tracing-subscriber's own fields look like.
            write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
        } else {
            write!(self.writer, "{name}=")?;
        }
        if value.is_empty() || value.chars().any(needs_quotes) {
            write!(self.writer, "{value:?}")
        } else {
            self.writer.write_str(value)
        }
    }
}

/// Whether a character must not appear bare in a text-format value: it would
/// separate fields (whitespace), start a quoted value or another field (`"`, `=`),
/// make an escape ambiguous (`\`), or is invisible or a control character.
fn needs_quotes(c: char) -> bool {
    // ASCII, what nearly every value is, without the Unicode tables.
    if c.is_ascii() {
        return !c.is_ascii_graphic() || matches!(c, '"' | '\\' | '=');
    }
    c.is_whitespace() || is_unprintable(c)
}

/// A control character, or one Rust's `Debug` escapes as invisible (a bidi override,
/// a zero-width space, a lone combining mark).
fn is_unprintable(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    c.escape_debug().len() > 1
}

/// `text` with every unprintable character escaped and nothing quoted: the runs
/// between such characters are written whole.
fn write_escaped(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut run = 0;
    for (at, c) in text.char_indices() {
        if is_unprintable(c) {
            writer.write_str(&text[run..at])?;
            write!(writer, "{}", c.escape_debug())?;
            run = at + c.len_utf8();
        }
    }
    writer.write_str(&text[run..])
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write_field(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        self.write_field(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` arrives here too, its Debug being its Display. The text is made in
        // a buffer kept by the thread (an audit line has three such fields), or in a
        // fresh one if a value's own formatting logs.
        thread_local! {
            static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let _ = write!(text, "{value:?}");
                self.write_field(field, &text);
                if text.capacity() > 4096 {
                    *text = String::new();
                }
            }
            Err(_) => self.write_field(field, &format!("{value:?}")),
        });
    }
}

impl VisitOutput<fmt::Result> for EscapingVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapingVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Latency buckets, in seconds: from 100 µs (a cached token) to 10 s (a timeout).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's Prometheus recorder, installed on first use. The `metrics` facade
/// has one recorder per process, so every server in it shares this handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may be installed already (a test harness, say): then
            // this handle renders an empty page rather than failing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::EscapedFields;

    /// A log writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What the text format writes for the events `emit` records.
    fn text_log(ansi: bool, emit: impl FnOnce()) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(EscapedFields)
            .with_writer(move || writer.clone())
            .with_ansi(ansi)
            .without_time()
            .with_target(false)
            .with_level(false)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).expect("UTF-8 log")
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        use super::colour_log;
        assert!(colour_log(true, None));
        assert!(colour_log(true, Some("".into())), "an empty NO_COLOR is unset");
        assert!(!colour_log(true, Some("1".into())));
        assert!(!colour_log(false, None), "a pipe or a file");
        assert!(!colour_log(false, Some("1".into())));
    }

    #[test]
    fn the_ascii_shortcut_agrees_with_the_unicode_rules() {
        let unprintable = |c: char| !matches!(c, '\'' | '"' | '\\') && c.escape_debug().len() > 1;
        for c in '\0'..='\u{7f}' {
            assert_eq!(super::is_unprintable(c), unprintable(c), "{c:?}");
            let quoted = c.is_whitespace() || matches!(c, '"' | '\\' | '=') || unprintable(c);
            assert_eq!(super::needs_quotes(c), quoted, "{c:?}");
        }
    }

    #[test]
    fn control_characters_in_a_value_stay_on_one_line_and_escaped() {
        let forged =
            "x\r\n2026-01-01T00:00:00Z  INFO gatehouse::audit: event=token_issued client_id=admin\u{1b}[2J";
        let log = text_log(
            false,
            || tracing::info!(event = "token_refused", client_id = %forged, grant = "password"),
        );
        assert_eq!(
            log,
            "event=token_refused client_id=\"x\\r\\n2026-01-01T00:00:00Z  INFO gatehouse::audit: \
             event=token_issued client_id=admin\\u{1b}[2J\" grant=password\n"
        );
    }

    #[test]
    fn a_value_cannot_pass_for_another_field() {
        let log = text_log(
            false,
            || tracing::info!(a = %"1 b=2", c = %"say \"hi\"", d = %"", e = %"back\\slash", f = %"\u{202e}", g = "plain-value_1.2:3/4"),
        );
        assert_eq!(
            log,
            "a=\"1 b=2\" c=\"say \\\"hi\\\"\" d=\"\" e=\"back\\\\slash\" f=\"\\u{202e}\" g=plain-value_1.2:3/4\n"
        );
    }

    #[test]
    fn the_message_is_a_bare_sentence_with_control_characters_escaped() {
        let log = text_log(false, || {
            tracing::info!(n = 3, ok = true, "listening, as before\n\u{1b}[31m")
        });
        assert_eq!(log, "listening, as before\\n\\u{1b}[31m n=3 ok=true\n");
    }

    #[test]
    fn on_a_terminal_names_are_styled_and_values_still_escaped() {
        let log = text_log(true, || tracing::info!(client_id = %"\u{1b}[31mred"));
        assert!(
            log.contains("\u{1b}[3mclient_id\u{1b}[0m\u{1b}[2m=\u{1b}[0m\"\\u{1b}[31mred\""),
            "{log:?}"
        );
        assert!(
            !log.contains("\u{1b}[31m"),
            "a raw escape from the value: {log:?}"
        );
    }
}
