//! HTTP/1.1 as the proxy forwards it, HAProxy's way: a message's head is parsed in the
//! session's buffer (with `httparse`) and written again, without its hop-by-hop headers,
//! into an output buffer; its body is passed on as the bytes that came, framed by
//! `Content-Length` or chunked encoding (of which only the framing is read), never decoded
//! or copied into anything but the socket. No allocation per request: a session's buffers
//! live as long as it does, a pooled backend connection's as long as the connection.

use std::fmt;

/// The room a session has for one direction's bytes (HAProxy's `bufsize`): a request or
/// response head must fit in it (past it: `431` for a request, `502` for a response).
pub const BUF_SIZE: usize = 16 * 1024;

/// The most header fields a head may have.
const MAX_HEADERS: usize = 100;

/// Bytes read from a socket and not yet passed on: `data()` is what is left, from `start`.
#[derive(Debug)]
pub struct Buf {
    bytes: Vec<u8>,
    start: usize,
}

impl Buf {
    /// An empty buffer of [`BUF_SIZE`] (allocated once: it never grows).
    pub fn new() -> Buf {
        Buf {
            bytes: Vec::with_capacity(BUF_SIZE),
            start: 0,
        }
    }

    /// What is left to pass on.
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// Marks the first `n` bytes of [`data`](Self::data) passed on.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.bytes.len());
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
    }

    /// The vector to read into, with room at its end (what is left moved to the front when
    /// the room was used up); `None` when what is left fills the whole buffer.
    pub fn room(&mut self) -> Option<&mut Vec<u8>> {
        if self.bytes.len() >= BUF_SIZE {
            if self.start == 0 {
                return None;
            }
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        Some(&mut self.bytes)
    }
}

impl Default for Buf {
    fn default() -> Buf {
        Buf::new()
    }
}

/// Why a head cannot be forwarded; the text goes into the error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bad(pub &'static str);

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// How a message's body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// It has none.
    Empty,
    /// `Content-Length`: this many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`, read as far as the scanner is.
    Chunked(Chunked),
    /// A response without a length: it ends when the backend closes.
    UntilClose,
}

impl Framing {
    /// Of `data`, the next bytes of the body: how many (from the front), and whether they
    /// end it.
    ///
    /// # Errors
    ///
    /// Chunked encoding that does not parse.
    pub fn take(&mut self, data: &[u8]) -> Result<(usize, bool), Bad> {
        match self {
            Framing::Empty => Ok((0, true)),
            Framing::Length(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                *left -= n as u64;
                Ok((n, *left == 0))
            }
            Framing::Chunked(c) => c.scan(data),
            Framing::UntilClose => Ok((data.len(), false)),
        }
    }
}

/// What the session needs of a request besides its rewritten head.
#[derive(Debug)]
pub struct RequestHead {
    /// Bytes of the head in the input.
    pub len: usize,
    /// How its body ends.
    pub body: Framing,
    /// The client's connection stays open after the response (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// HTTP/1.0: a keep-alive answer must say so.
    pub http10: bool,
    /// `HEAD`: the response has no body whatever it says.
    pub head: bool,
    /// `Expect: 100-continue` (taken out: the proxy answers it itself).
    pub expect_continue: bool,
}

/// What the session needs of a response besides its rewritten head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Bytes of the head in the input.
    pub len: usize,
    /// The status code.
    pub status: u16,
    /// How its body ends.
    pub body: Framing,
    /// The backend keeps the connection open after it (and a later request may use it).
    pub reusable: bool,
}

/// Hop-by-hop header fields (RFC 9110, 7.6.1): they describe one connection, so a proxy does
/// not pass them on (`Transfer-Encoding` is passed on: the body is passed on as it came).
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
];

/// The tokens of the `Connection` fields of `headers`.
fn connection_tokens<'h>(
    headers: &'h [httparse::Header<'h>],
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// What the `Connection` fields say: (`close`, `keep-alive`, other names: fields that are
/// hop-by-hop too).
fn connection_options(headers: &[httparse::Header<'_>]) -> (bool, bool, bool) {
    let (mut close, mut keep, mut named) = (false, false, false);
    for t in connection_tokens(headers) {
        if t.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if t.eq_ignore_ascii_case(b"keep-alive") {
            keep = true;
        } else {
            named = true;
        }
    }
    (close, keep, named)
}

/// Whether `name` is passed on: not hop-by-hop, and not named by a `Connection` field (looked
/// at only when one names something: `named`).
fn passed_on(name: &str, headers: &[httparse::Header<'_>], named: bool) -> bool {
    if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return false;
    }
    !(named && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(name.as_bytes())))
}

/// The framing `Content-Length` and `Transfer-Encoding` give (RFC 9112, 6.3): chunked when
/// the last transfer coding is chunked, else `other_te` (a request's is an error, a
/// response's ends at close); otherwise the length (fields that disagree are an error);
/// otherwise `none`.
fn framing(
    headers: &[httparse::Header<'_>],
    other_te: Result<Framing, Bad>,
    none: Framing,
) -> Result<Framing, Bad> {
    let mut te_last: Option<&[u8]> = None;
    let mut length: Option<u64> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if let Some(last) = h.value.rsplit(|&b| b == b',').next() {
                te_last = Some(last.trim_ascii());
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = h.value.trim_ascii();
            if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
                return Err(Bad("a Content-Length that is not a number"));
            }
            let n = v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if length.is_some_and(|l| l != n) {
                return Err(Bad("Content-Length fields that disagree"));
            }
            length = Some(n);
        }
    }
    match (te_last, length) {
        (Some(t), _) if t.eq_ignore_ascii_case(b"chunked") => {
            Ok(Framing::Chunked(Chunked::default()))
        }
        (Some(_), _) => other_te,
        (None, Some(0)) => Ok(Framing::Empty),
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(none),
    }
}

/// Writes one header field line.
fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Parses the request head at the front of `input` and writes it, as it goes to a backend,
/// to `out`: hop-by-hop fields and `Expect: 100-continue` left out, `X-Forwarded-For: xff`
/// added, `Content-Length` left out when `Transfer-Encoding` frames the body. `Ok(None)`:
/// the head is not all there yet.
///
/// # Errors
///
/// A head that does not parse, or a body framing a proxy must refuse (RFC 9112, 6.3).
pub fn request(input: &[u8], xff: &[u8], out: &mut Vec<u8>) -> Result<Option<RequestHead>, Bad> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Bad("more than 100 header fields")),
        Err(_) => return Err(Bad("a request head that does not parse")),
    };
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Bad("a request head that does not parse"));
    };
    let headers = req.headers;
    let http10 = minor == 0;
    let body = framing(
        headers,
        Err(Bad("a Transfer-Encoding that does not end in chunked")),
        Framing::Empty,
    )?;
    let chunked = matches!(body, Framing::Chunked(_));
    let (close, keep, named) = connection_options(headers);
    let mut expect_continue = false;

    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(if http10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    for h in headers.iter() {
        if !passed_on(h.name, headers, named)
            || (chunked && h.name.eq_ignore_ascii_case("content-length"))
        {
            continue;
        }
        if h.name.eq_ignore_ascii_case("expect") && h.value.eq_ignore_ascii_case(b"100-continue") {
            expect_continue = true;
            continue;
        }
        field(out, h.name.as_bytes(), h.value);
    }
    field(out, b"x-forwarded-for", xff);
    out.extend_from_slice(b"\r\n");
    // Both a length and chunked framing: a message to be wary of (request smuggling):
    // forwarded as chunked, and the connection closed after it.
    let smuggling = chunked && has(headers, "content-length");
    Ok(Some(RequestHead {
        len,
        body,
        keep_alive: !close && (!http10 || keep) && !smuggling,
        http10,
        head: method == "HEAD",
        expect_continue,
    }))
}

fn has(headers: &[httparse::Header<'_>], name: &str) -> bool {
    headers.iter().any(|h| h.name.eq_ignore_ascii_case(name))
}

/// The answer to a request of kind `req`: what [`response`] needs to know of it.
#[derive(Debug, Clone, Copy)]
pub struct Answering {
    /// The request was a `HEAD`.
    pub head: bool,
    /// The client's connection closes after this response (it says so).
    pub close: bool,
    /// The client spoke HTTP/1.0 and keeps its connection: the response says so.
    pub http10_keep_alive: bool,
}

/// Parses the response head at the front of `input` and writes it, as it goes to the client,
/// to `out` (hop-by-hop fields left out, `Connection: close` or `keep-alive` added as
/// `answering` says). `Ok(None)`: the head is not all there yet. An interim response (1xx)
/// is returned with an empty `out`: the proxy drops it and reads on.
///
/// # Errors
///
/// A head that does not parse, or `101 Switching Protocols` (the proxy does not pass
/// upgrades on: it took `Upgrade` out of the request).
pub fn response(
    input: &[u8],
    answering: Answering,
    out: &mut Vec<u8>,
) -> Result<Option<ResponseHead>, Bad> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Bad("a response head that does not parse")),
    };
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(Bad("a response head that does not parse"));
    };
    if status == 101 {
        return Err(Bad("101 Switching Protocols to a request without Upgrade"));
    }
    if (100..200).contains(&status) {
        return Ok(Some(ResponseHead {
            len,
            status,
            body: Framing::Empty,
            reusable: true,
        }));
    }
    let headers = resp.headers;
    let body = if answering.head || status == 204 || status == 304 {
        Framing::Empty
    } else {
        framing(headers, Ok(Framing::UntilClose), Framing::UntilClose)?
    };
    let (close, keep, named) = connection_options(headers);
    let reusable = !close && (minor == 1 || keep) && body != Framing::UntilClose;

    out.extend_from_slice(if minor == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    let code = [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    out.extend_from_slice(&code);
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    // A length beside chunked framing is not passed on (the chunks frame the body), as for a
    // request.
    let chunked = matches!(body, Framing::Chunked(_));
    for h in headers.iter() {
        if passed_on(h.name, headers, named)
            && !(chunked && h.name.eq_ignore_ascii_case("content-length"))
        {
            field(out, h.name.as_bytes(), h.value);
        }
    }
    if answering.close || body == Framing::UntilClose {
        out.extend_from_slice(b"connection: close\r\n");
    } else if answering.http10_keep_alive {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(ResponseHead {
        len,
        status,
        body,
        reusable,
    }))
}

/// Where a chunked body's scanner is (RFC 9112, 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// In a chunk size (`digits` read so far).
    #[default]
    Size,
    /// In a chunk extension, up to the line's end.
    Extension,
    /// After a size line's CR.
    SizeLf,
    /// In a chunk's data.
    Data,
    /// After a chunk's data: its CR.
    DataCr,
    /// Its LF.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// In a trailer line.
    Trailer,
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final empty line's CR.
    EndLf,
    /// The body is over.
    Done,
}

/// Finds where a chunked body ends, byte by byte as they pass (nothing is kept but this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    /// The size of the chunk being read, then what is left of its data.
    size: u64,
    digits: u8,
}

impl Chunked {
    /// Of `data`, how many bytes belong to the body, and whether they end it.
    ///
    /// # Errors
    ///
    /// Bytes that are not chunked encoding.
    pub fn scan(&mut self, data: &[u8]) -> Result<(usize, bool), Bad> {
        use ChunkState::*;
        let mut i = 0;
        while i < data.len() {
            if self.state == Data {
                let n = usize::try_from(self.size)
                    .unwrap_or(usize::MAX)
                    .min(data.len() - i);
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    if self.digits == 16 {
                        return Err(Bad("a chunk size over 16 hex digits"));
                    }
                    self.digits += 1;
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    self.size = self.size * 16 + u64::from(d);
                    Size
                }
                (Size, b';' | b' ' | b'\t') if self.digits > 0 => Extension,
                (Size, b'\r') if self.digits > 0 => SizeLf,
                (Extension, b'\r') => SizeLf,
                (Extension, b'\n') => return Err(Bad("a chunk line without CR")),
                (Extension, _) => Extension,
                (SizeLf, b'\n') if self.size == 0 => TrailerStart,
                (SizeLf, b'\n') => Data,
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => {
                    self.digits = 0;
                    Size
                }
                (TrailerStart, b'\r') => EndLf,
                (Trailer, b'\r') => TrailerLf,
                (TrailerStart | Trailer, b'\n') => return Err(Bad("a trailer line without CR")),
                (TrailerStart | Trailer, _) => Trailer,
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => {
                    self.state = Done;
                    return Ok((i, true));
                }
                (Done, _) => return Ok((i - 1, true)),
                _ => return Err(Bad("a body that is not chunked encoding")),
            };
        }
        Ok((i, self.state == Done))
    }
}

/// The fuzz target `h1` (fuzz/fuzz_targets/h1.rs): `data` as a request head, a response head
/// and a chunked body, cut at a place `data` chooses. Nothing may panic; what is taken lies
/// within what was given; a head written again parses as a whole head of the same length, with
/// no hop-by-hop field left; the chunk scanner finds the same end whether the bytes come
/// whole or in two pieces.
#[cfg(fuzzing)]
pub fn fuzz(data: &[u8]) {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let mut out = Vec::new();
    if let Ok(Some(req)) = request(data, b"192.0.2.1", &mut out) {
        assert!(req.len <= data.len());
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS + 1];
        let mut again = httparse::Request::new(&mut fields);
        assert_eq!(again.parse(&out), Ok(httparse::Status::Complete(out.len())));
        assert!(
            !again
                .headers
                .iter()
                .any(|h| HOP_BY_HOP.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
        );
        let mut body = req.body;
        if let Ok((n, _)) = body.take(&data[req.len..]) {
            assert!(n <= data.len() - req.len);
        }
    }
    for head in [false, true] {
        out.clear();
        let answering = Answering {
            head,
            close: cut & 1 != 0,
            http10_keep_alive: cut & 2 != 0,
        };
        if let Ok(Some(resp)) = response(data, answering, &mut out) {
            assert!(resp.len <= data.len());
            if !out.is_empty() {
                let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS + 1];
                let mut again = httparse::Response::new(&mut fields);
                assert_eq!(again.parse(&out), Ok(httparse::Status::Complete(out.len())));
            }
        }
    }
    let whole = Chunked::default().scan(data);
    let at = usize::from(cut).min(data.len());
    let mut c = Chunked::default();
    let pieces = c.scan(&data[..at]).and_then(|(a, done)| {
        if done {
            return Ok((a, true));
        }
        assert_eq!(a, at, "a piece without the end is taken whole");
        c.scan(&data[at..]).map(|(b, done)| (a + b, done))
    });
    match (whole, pieces) {
        (Ok(w), Ok(p)) => {
            assert_eq!(w, p, "the end depends on where the bytes were cut");
            assert!(w.0 <= data.len());
        }
        (Err(_), Err(_)) => {}
        (w, p) => panic!("whole {w:?} but in pieces {p:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(head: &str) -> (Result<Option<RequestHead>, Bad>, String) {
        let mut out = Vec::new();
        let r = request(head.as_bytes(), b"10.0.0.1", &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    fn resp(head: &str, answering: Answering) -> (Result<Option<ResponseHead>, Bad>, String) {
        let mut out = Vec::new();
        let r = response(head.as_bytes(), answering, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    const KEEP: Answering = Answering {
        head: false,
        close: false,
        http10_keep_alive: false,
    };

    #[test]
    fn a_plain_get_is_passed_on_with_x_forwarded_for() {
        let (r, out) = req("GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nNEXT");
        let r = r.unwrap().unwrap();
        assert_eq!(
            r.len,
            "GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".len()
        );
        assert_eq!(r.body, Framing::Empty);
        assert!(r.keep_alive && !r.http10 && !r.head && !r.expect_continue);
        assert_eq!(
            out,
            "GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.1\r\n\r\n"
        );
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        let (r, out) = req("GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(r.unwrap().is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_are_left_out() {
        let (r, out) = req(
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: close, X-Hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\n\
             proxy-connection: keep-alive\r\nte: trailers\r\nupgrade: h2c\r\nx-kept: 1\r\n\r\n",
        );
        let r = r.unwrap().unwrap();
        assert!(!r.keep_alive, "the client said close");
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nhost: x\r\nx-kept: 1\r\nx-forwarded-for: 10.0.0.1\r\n\r\n"
        );
    }

    #[test]
    fn http10_keeps_its_connection_only_when_it_asks() {
        let (r, out) = req("GET / HTTP/1.0\r\n\r\n");
        let r = r.unwrap().unwrap();
        assert!(r.http10 && !r.keep_alive);
        assert!(out.starts_with("GET / HTTP/1.0\r\n"));
        let (r, _) = req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(r.unwrap().unwrap().keep_alive);
    }

    #[test]
    fn bodies_are_framed_by_length_or_chunks() {
        let (r, _) = req("POST / HTTP/1.1\r\ncontent-length: 12\r\n\r\n");
        assert_eq!(r.unwrap().unwrap().body, Framing::Length(12));
        let (r, _) = req("POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(r.unwrap().unwrap().body, Framing::Empty);
        let (r, out) = req("POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
        assert!(matches!(r.unwrap().unwrap().body, Framing::Chunked(_)));
        assert!(
            out.contains("transfer-encoding: gzip, chunked\r\n"),
            "{out}"
        );
    }

    #[test]
    fn a_request_with_both_length_and_chunks_goes_as_chunked_and_closes() {
        let (r, out) =
            req("POST / HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n");
        let r = r.unwrap().unwrap();
        assert!(matches!(r.body, Framing::Chunked(_)));
        assert!(!r.keep_alive);
        assert!(!out.contains("content-length"), "{out}");
    }

    #[test]
    fn bad_framing_and_bad_heads_are_refused() {
        for head in [
            "POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            "GET / HTTP/1.1\r\nbad header\r\n\r\n",
            "GET\r\n\r\n",
        ] {
            assert!(req(head).0.is_err(), "{head:?} was not refused");
        }
        let many: String = (0..101).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert_eq!(
            req(&format!("GET / HTTP/1.1\r\n{many}\r\n")).0.unwrap_err(),
            Bad("more than 100 header fields")
        );
    }

    #[test]
    fn expect_100_continue_is_taken_out() {
        let (r, out) = req("PUT / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\n");
        assert!(r.unwrap().unwrap().expect_continue);
        assert!(!out.contains("expect"), "{out}");
    }

    #[test]
    fn a_response_is_passed_on_without_hop_by_hop_fields() {
        let (r, out) = resp(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=5\r\nconnection: keep-alive\r\n\r\nok",
            KEEP,
        );
        let r = r.unwrap().unwrap();
        assert_eq!(
            (r.status, r.body.clone(), r.reusable),
            (200, Framing::Length(2), true)
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
    }

    #[test]
    fn a_closing_client_or_a_body_to_the_close_says_connection_close() {
        let close = Answering {
            close: true,
            ..KEEP
        };
        let (_, out) = resp("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", close);
        assert_eq!(
            out,
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (r, out) = resp("HTTP/1.1 200 OK\r\n\r\n", KEEP);
        let r = r.unwrap().unwrap();
        assert_eq!(r.body, Framing::UntilClose);
        assert!(!r.reusable);
        assert!(out.ends_with("connection: close\r\n\r\n"), "{out}");
        let ka10 = Answering {
            http10_keep_alive: true,
            ..KEEP
        };
        let (_, out) = resp("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", ka10);
        assert!(out.ends_with("connection: keep-alive\r\n\r\n"), "{out}");
    }

    #[test]
    fn a_chunked_response_loses_its_length() {
        let (r, out) = resp(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            KEEP,
        );
        assert!(matches!(r.unwrap().unwrap().body, Framing::Chunked(_)));
        assert_eq!(out, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
    }

    #[test]
    fn bodiless_responses_and_backend_closes() {
        let head = Answering { head: true, ..KEEP };
        let (r, _) = resp("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", head);
        assert_eq!(r.unwrap().unwrap().body, Framing::Empty);
        let (r, _) = resp(
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
            KEEP,
        );
        assert_eq!(r.unwrap().unwrap().body, Framing::Empty);
        let (r, _) = resp(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
            KEEP,
        );
        assert!(!r.unwrap().unwrap().reusable);
        let (r, _) = resp("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", KEEP);
        assert!(!r.unwrap().unwrap().reusable);
        let (r, out) = resp("HTTP/1.1 100 Continue\r\n\r\n", KEEP);
        assert_eq!(r.unwrap().unwrap().status, 100);
        assert!(out.is_empty());
        assert!(
            resp("HTTP/1.1 101 Switching Protocols\r\n\r\n", KEEP)
                .0
                .is_err()
        );
    }

    /// Scans `body` cut at every place into two pieces; the bytes taken and the end.
    fn scan_split(body: &[u8]) -> Vec<(usize, bool)> {
        (0..=body.len())
            .map(|cut| {
                let mut c = Chunked::default();
                let (a, done) = c.scan(&body[..cut]).unwrap();
                if done {
                    return (a, true);
                }
                assert_eq!(a, cut, "a piece without the end is taken whole");
                let (b, done) = c.scan(&body[cut..]).unwrap();
                (a + b, done)
            })
            .collect()
    }

    #[test]
    fn the_chunk_scanner_finds_the_end_wherever_the_bytes_are_cut() {
        let body = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        for (taken, done) in scan_split(body) {
            assert_eq!((taken, done), (body.len(), true));
        }
        let mut with_next = body.to_vec();
        with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut c = Chunked::default();
        assert_eq!(c.scan(&with_next).unwrap(), (body.len(), true));
    }

    #[test]
    fn the_chunk_scanner_refuses_what_is_not_chunked() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloX",
            b"\r\n",
            b"11111111111111111\r\n",
            b"0\r\nx\n",
        ] {
            assert!(Chunked::default().scan(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn framing_takes_what_belongs_to_the_body() {
        let mut f = Framing::Length(5);
        assert_eq!(f.take(b"abc").unwrap(), (3, false));
        assert_eq!(f.take(b"defGET").unwrap(), (2, true));
        assert_eq!(Framing::Empty.take(b"GET").unwrap(), (0, true));
        assert_eq!(Framing::UntilClose.take(b"xyz").unwrap(), (3, false));
    }

    #[test]
    fn a_full_buffer_makes_room_by_moving_what_is_left() {
        let mut b = Buf::new();
        b.room().unwrap().extend(std::iter::repeat_n(7u8, BUF_SIZE));
        assert!(b.room().is_none(), "full with nothing passed on");
        b.consume(10);
        assert_eq!(b.data().len(), BUF_SIZE - 10);
        let v = b.room().unwrap();
        assert_eq!(v.len(), BUF_SIZE - 10);
        b.consume(BUF_SIZE - 10);
        assert!(b.is_empty());
    }
}
