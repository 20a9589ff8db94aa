//! ANSI ASC X12 EDI: the envelope reader every transaction set shares, and the documents Ordo
//! takes in (850 purchase orders) and writes (997, 855, 846, 856, 810).
//!
//! Separators come from the interchange header, never from convention: the element separator is
//! the byte after `ISA`, the component separator is ISA16 (found by counting sixteen element
//! separators, because real files do not pad the ISA to its 106 fixed characters), and the segment
//! terminator is the byte after it. Line breaks and indentation between segments are skipped
//! (unless a line break *is* the terminator). Reading is zero-copy: segments borrow the input.
//!
//! Envelope faults (trailer control numbers, segment and set counts, missing trailers) are
//! reported, not fatal — published files get them wrong often enough that a reader has to say
//! what is wrong rather than refuse to look. What to do about them is the caller's decision (the
//! 997 rejects the sets they touch). Only input that cannot be read as X12 at all is an error.

pub mod ack;
pub mod inbound;
pub mod outbound;
pub mod po850;
pub mod write;

use crate::FormatError;

/// The separators an interchange declares in its ISA segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub element: u8,
    pub component: u8,
    pub segment: u8,
    /// ISA11 from version 00402 on (`^` usually); `None` when ISA11 is the standards id `U`.
    pub repetition: Option<u8>,
}

impl Default for Delimiters {
    /// What Ordo writes: `*` elements, `>` components, `~` segments, `^` repetitions.
    fn default() -> Self {
        Self { element: b'*', component: b'>', segment: b'~', repetition: Some(b'^') }
    }
}

/// One segment: its id (`PO1`) and its elements, where `element(1)` is `PO101`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    pub id: &'a str,
    elements: Vec<&'a str>,
    /// Byte offset of the segment in the input, for error positions.
    pub offset: usize,
}

impl<'a> Segment<'a> {
    /// Element `n` (1-based, as X12 numbers them), trimmed of padding; `""` when absent.
    pub fn element(&self, n: usize) -> &'a str {
        n.checked_sub(1).and_then(|i| self.elements.get(i)).map_or("", |e| e.trim())
    }

    /// Number of elements after the id (trailing empty ones included, as written).
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// `PO104`-style reference to element `n`, for messages.
    pub fn reference(&self, n: usize) -> String {
        format!("{}{n:02}", self.id)
    }
}

/// An envelope fault, with the acknowledgement code X12 gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeIssue {
    /// SE02 differs from ST02 (AK5 code 3).
    SetControlMismatch { header: String, trailer: String },
    /// SE01 differs from the segments counted ST through SE (AK5 code 4).
    SegmentCountMismatch { stated: String, counted: usize },
    /// The set ends without an SE (AK5 code 2).
    SetTrailerMissing,
    /// GE02 differs from GS06 (AK9 code 4).
    GroupControlMismatch { header: String, trailer: String },
    /// GE01 differs from the sets counted (AK9 code 5).
    SetCountMismatch { stated: String, counted: usize },
    /// The group ends without a GE (AK9 code 3).
    GroupTrailerMissing,
    /// IEA02 differs from ISA13 (TA1 code 001).
    InterchangeControlMismatch { header: String, trailer: String },
    /// IEA01 differs from the groups counted (TA1 code 021).
    GroupCountMismatch { stated: String, counted: usize },
    /// The interchange ends without an IEA (TA1 code 023).
    InterchangeTrailerMissing,
}

impl EnvelopeIssue {
    /// The code the acknowledgement reports (AK5 for sets, AK9 for groups, TA1 for interchanges).
    pub fn code(&self) -> &'static str {
        match self {
            Self::SetTrailerMissing => "2",
            Self::SetControlMismatch { .. } => "3",
            Self::SegmentCountMismatch { .. } => "4",
            Self::GroupTrailerMissing => "3",
            Self::GroupControlMismatch { .. } => "4",
            Self::SetCountMismatch { .. } => "5",
            Self::InterchangeControlMismatch { .. } => "001",
            Self::GroupCountMismatch { .. } => "021",
            Self::InterchangeTrailerMissing => "023",
        }
    }
}

impl std::fmt::Display for EnvelopeIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SetControlMismatch { header, trailer } => {
                write!(f, "SE02 {trailer:?} does not match ST02 {header:?}")
            }
            Self::SegmentCountMismatch { stated, counted } => {
                write!(f, "SE01 says {stated:?} segments, the set has {counted}")
            }
            Self::SetTrailerMissing => write!(f, "the transaction set has no SE trailer"),
            Self::GroupControlMismatch { header, trailer } => {
                write!(f, "GE02 {trailer:?} does not match GS06 {header:?}")
            }
            Self::SetCountMismatch { stated, counted } => {
                write!(f, "GE01 says {stated:?} sets, the group has {counted}")
            }
            Self::GroupTrailerMissing => write!(f, "the functional group has no GE trailer"),
            Self::InterchangeControlMismatch { header, trailer } => {
                write!(f, "IEA02 {trailer:?} does not match ISA13 {header:?}")
            }
            Self::GroupCountMismatch { stated, counted } => {
                write!(f, "IEA01 says {stated:?} groups, the interchange has {counted}")
            }
            Self::InterchangeTrailerMissing => write!(f, "the interchange has no IEA trailer"),
        }
    }
}

/// A transaction set (ST … SE): its code, control number and the segments between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSet<'a> {
    pub code: &'a str,
    pub control_number: &'a str,
    /// The segments after ST and before SE.
    pub segments: Vec<Segment<'a>>,
    pub issues: Vec<EnvelopeIssue>,
    pub offset: usize,
}

/// A functional group (GS … GE) of sets of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    pub header: Segment<'a>,
    pub sets: Vec<TransactionSet<'a>>,
    pub issues: Vec<EnvelopeIssue>,
}

impl<'a> Group<'a> {
    /// GS01: PO (850), PR (855), SH (856), IN (810), IB (846), FA (997)…
    pub fn functional_id(&self) -> &'a str {
        self.header.element(1)
    }
    pub fn control_number(&self) -> &'a str {
        self.header.element(6)
    }
    /// GS08: the version, release and industry code (`004010`, `004010VICS`, `005010`).
    pub fn version(&self) -> &'a str {
        self.header.element(8)
    }
}

/// A trading partner's interchange address: ISA qualifier and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Party {
    pub qualifier: String,
    pub id: String,
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.qualifier, self.id)
    }
}

impl std::str::FromStr for Party {
    type Err = String;
    /// `ZZ:ACME` (qualifier and id), or a bare id under the mutually defined qualifier `ZZ`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (qualifier, id) = s.split_once(':').unwrap_or(("ZZ", s));
        if qualifier.len() != 2 || id.is_empty() || id.len() > 15 || !s.is_ascii() {
            return Err(format!("{s:?} is not an interchange address (QUALIFIER:ID, 2 characters and 1 to 15)"));
        }
        Ok(Party { qualifier: qualifier.to_owned(), id: id.to_owned() })
    }
}

/// An interchange (ISA … IEA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interchange<'a> {
    pub header: Segment<'a>,
    pub delimiters: Delimiters,
    pub groups: Vec<Group<'a>>,
    pub issues: Vec<EnvelopeIssue>,
}

impl<'a> Interchange<'a> {
    pub fn sender(&self) -> Party {
        Party { qualifier: self.header.element(5).to_owned(), id: self.header.element(6).to_owned() }
    }
    pub fn receiver(&self) -> Party {
        Party { qualifier: self.header.element(7).to_owned(), id: self.header.element(8).to_owned() }
    }
    /// ISA13: with the sender, what identifies a re-sent interchange.
    pub fn control_number(&self) -> &'a str {
        self.header.element(13)
    }
    /// ISA15: `P` production, `T` test.
    pub fn usage(&self) -> &'a str {
        self.header.element(15)
    }
}

/// Line number (1-based) of a byte offset: computed only when a message needs it.
pub fn line_of(input: &str, offset: usize) -> u64 {
    input.as_bytes()[..offset.min(input.len())].iter().filter(|b| **b == b'\n').count() as u64 + 1
}

/// An error at a segment's element: where (line, `PO102`), what was there and what is wrong.
pub fn element_error(input: &str, segment: &Segment<'_>, n: usize, message: impl Into<String>) -> FormatError {
    let value = segment.element(n);
    FormatError {
        line: line_of(input, segment.offset),
        column: Some(segment.reference(n)),
        value: (!value.is_empty()).then(|| value.to_owned()),
        message: message.into(),
    }
}

fn is_gap(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

/// Reads the separators from the ISA at the start of `input` (after any byte-order mark or
/// leading whitespace), returning them and where the ISA starts.
pub fn delimiters(input: &str) -> Result<(Delimiters, usize), FormatError> {
    let bytes = input.as_bytes();
    let start = input.strip_prefix('\u{feff}').map_or(0, |_| 3);
    let start = start + bytes[start..].iter().take_while(|b| is_gap(**b)).count();
    let isa = &bytes[start..];
    if !isa.starts_with(b"ISA") {
        let found: String = input[start..].chars().take(3).collect();
        return Err(FormatError {
            line: line_of(input, start),
            column: None,
            value: (!found.is_empty()).then_some(found),
            message: "not an X12 interchange: it must start with an ISA segment".into(),
        });
    }
    let short = || FormatError::at(line_of(input, start), "the ISA segment is cut short: it needs 16 elements");
    let element = *isa.get(3).ok_or_else(short)?;
    if element.is_ascii_alphanumeric() || is_gap(element) || !element.is_ascii() {
        return Err(FormatError {
            line: line_of(input, start),
            column: Some("ISA".into()),
            value: Some((element as char).to_string()),
            message: "the element separator (the character after ISA) must be a punctuation character".into(),
        });
    }
    // ISA16 follows the 16th element separator; the segment terminator follows ISA16.
    let sixteenth = isa.iter().enumerate().filter(|(_, b)| **b == element).nth(15).map(|(i, _)| i).ok_or_else(short)?;
    let component = *isa.get(sixteenth + 1).ok_or_else(short)?;
    let segment = *isa.get(sixteenth + 2).ok_or_else(short)?;
    if !component.is_ascii() || !segment.is_ascii() || component == element || segment == element {
        return Err(FormatError {
            line: line_of(input, start),
            column: Some("ISA16".into()),
            value: Some(String::from_utf8_lossy(&isa[sixteenth + 1..sixteenth + 3]).into_owned()),
            message: "the component separator and segment terminator must be two other ASCII characters".into(),
        });
    }
    // ISA11 is the repetition separator from 00402 on, the standards id `U` before.
    let isa11 = isa.iter().enumerate().filter(|(_, b)| **b == element).nth(10).map(|(i, _)| i + 1);
    let repetition = isa11.and_then(|i| isa.get(i)).copied().filter(|b| !b.is_ascii_alphanumeric() && *b != element);
    Ok((Delimiters { element, component, segment, repetition }, start))
}

/// Splits `input` into segments (zero-copy), skipping line breaks and indentation between them.
pub fn segments(input: &str) -> Result<(Delimiters, Vec<Segment<'_>>), FormatError> {
    let (d, start) = delimiters(input)?;
    let element = d.element as char;
    let mut out = Vec::with_capacity(input.len() / 24);
    let mut offset = start;
    for raw in input[start..].split(d.segment as char) {
        let here = offset;
        offset += raw.len() + 1;
        let skip = raw.bytes().take_while(|b| is_gap(*b) && *b != d.element).count();
        let text = &raw[skip..];
        if text.is_empty() || text.bytes().all(is_gap) {
            continue;
        }
        let mut parts = text.split(element);
        let id = parts.next().unwrap_or_default();
        let id_ok = (2..=3).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !id_ok {
            return Err(FormatError {
                line: line_of(input, here + skip),
                column: None,
                value: Some(text.chars().take(20).collect()),
                message: "not a segment: a segment starts with a 2- or 3-character id".into(),
            });
        }
        let mut elements: Vec<&str> = parts.collect();
        // A line-break terminator written as CR LF leaves the CR on the last element.
        if let Some(last) = elements.last_mut() {
            *last = last.trim_end_matches(['\r', '\n']);
        }
        out.push(Segment { id, elements, offset: here + skip });
    }
    Ok((d, out))
}

/// Reads every interchange in `input`, checking the envelopes (faults are kept as issues).
pub fn parse(input: &str) -> Result<Vec<Interchange<'_>>, FormatError> {
    let (delimiters, all) = segments(input)?;
    let mut interchanges: Vec<Interchange<'_>> = Vec::new();
    let mut it = all.into_iter().peekable();
    let outside = |s: &Segment<'_>, expected: &str| FormatError {
        line: line_of(input, s.offset),
        column: None,
        value: Some(s.id.to_owned()),
        message: format!("segment {} outside its envelope: expected {expected}", s.id),
    };
    while let Some(isa) = it.next() {
        if isa.id != "ISA" {
            return Err(outside(&isa, "ISA"));
        }
        if isa.len() < 16 {
            return Err(element_error(input, &isa, isa.len(), "the ISA segment needs 16 elements"));
        }
        let mut interchange = Interchange { header: isa, delimiters, groups: Vec::new(), issues: Vec::new() };
        let mut closed = false;
        while let Some(s) = it.next() {
            match s.id {
                "IEA" => {
                    let header = interchange.control_number();
                    if s.element(2) != header {
                        interchange.issues.push(EnvelopeIssue::InterchangeControlMismatch {
                            header: header.into(),
                            trailer: s.element(2).into(),
                        });
                    }
                    if s.element(1).parse::<usize>().ok() != Some(interchange.groups.len()) {
                        interchange.issues.push(EnvelopeIssue::GroupCountMismatch {
                            stated: s.element(1).into(),
                            counted: interchange.groups.len(),
                        });
                    }
                    closed = true;
                    break;
                }
                "GS" => {
                    let mut group = Group { header: s, sets: Vec::new(), issues: Vec::new() };
                    let mut group_closed = false;
                    while let Some(s) = it.next_if(|s| s.id != "IEA" && s.id != "ISA") {
                        match s.id {
                            "GE" => {
                                let header = group.control_number();
                                if s.element(2) != header {
                                    group.issues.push(EnvelopeIssue::GroupControlMismatch {
                                        header: header.into(),
                                        trailer: s.element(2).into(),
                                    });
                                }
                                if s.element(1).parse::<usize>().ok() != Some(group.sets.len()) {
                                    group.issues.push(EnvelopeIssue::SetCountMismatch {
                                        stated: s.element(1).into(),
                                        counted: group.sets.len(),
                                    });
                                }
                                group_closed = true;
                                break;
                            }
                            "ST" => {
                                let mut set = TransactionSet {
                                    code: s.element(1),
                                    control_number: s.element(2),
                                    segments: Vec::new(),
                                    issues: Vec::new(),
                                    offset: s.offset,
                                };
                                let mut set_closed = false;
                                while let Some(s) = it.next_if(|s| !matches!(s.id, "ST" | "GE" | "GS" | "IEA" | "ISA"))
                                {
                                    if s.id == "SE" {
                                        if s.element(2) != set.control_number {
                                            set.issues.push(EnvelopeIssue::SetControlMismatch {
                                                header: set.control_number.into(),
                                                trailer: s.element(2).into(),
                                            });
                                        }
                                        let counted = set.segments.len() + 2;
                                        if s.element(1).parse::<usize>().ok() != Some(counted) {
                                            set.issues.push(EnvelopeIssue::SegmentCountMismatch {
                                                stated: s.element(1).into(),
                                                counted,
                                            });
                                        }
                                        set_closed = true;
                                        break;
                                    }
                                    set.segments.push(s);
                                }
                                if !set_closed {
                                    set.issues.push(EnvelopeIssue::SetTrailerMissing);
                                }
                                group.sets.push(set);
                            }
                            _ => return Err(outside(&s, "ST or GE")),
                        }
                    }
                    if !group_closed {
                        group.issues.push(EnvelopeIssue::GroupTrailerMissing);
                    }
                    interchange.groups.push(group);
                }
                "ISA" => return Err(outside(&s, "IEA before the next ISA")),
                _ => return Err(outside(&s, "GS or IEA")),
            }
        }
        if !closed {
            interchange.issues.push(EnvelopeIssue::InterchangeTrailerMissing);
        }
        interchanges.push(interchange);
    }
    if interchanges.is_empty() {
        return Err(FormatError::at(1, "no interchange found"));
    }
    Ok(interchanges)
}

/// The X12 name of a transaction set code, for messages.
pub fn set_name(code: &str) -> &'static str {
    match code {
        "810" => "Invoice",
        "820" => "Payment Order/Remittance Advice",
        "846" => "Inventory Inquiry/Advice",
        "850" => "Purchase Order",
        "855" => "Purchase Order Acknowledgment",
        "856" => "Ship Notice/Manifest",
        "860" => "Purchase Order Change Request",
        "940" => "Warehouse Shipping Order",
        "945" => "Warehouse Shipping Advice",
        "997" => "Functional Acknowledgment",
        "999" => "Implementation Acknowledgment",
        _ => "unknown transaction set",
    }
}

/// `CCYYMMDD` (or `YYMMDD`, pre-4010 and ISA09) as a date.
pub fn date(text: &str) -> Option<ordo_types::Date> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |r: std::ops::Range<usize>| text.get(r).and_then(|t| t.parse::<u32>().ok());
    let (year, rest) = match text.len() {
        8 => (number(0..4)? as i32, 4),
        // ISA09's window: 00–49 → 20xx, 50–99 → 19xx.
        6 => {
            let yy = number(0..2)? as i32;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        _ => return None,
    };
    let day = chrono::NaiveDate::from_ymd_opt(year, number(rest..rest + 2)?, number(rest + 2..rest + 4)?)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch");
    Some(ordo_types::Date((day - epoch).num_days() as i32))
}

/// A date and an `HHMM[SS]` time (UTC: X12 carries no zone) as an instant.
pub fn instant(date_text: &str, time_text: &str) -> Option<ordo_types::Timestamp> {
    let day = date(date_text)?;
    let digits = |r: std::ops::Range<usize>| time_text.get(r).and_then(|t| t.parse::<i64>().ok());
    let (h, m) = if time_text.is_empty() { (0, 0) } else { (digits(0..2)?, digits(2..4)?) };
    let s = if time_text.len() >= 6 { digits(4..6)? } else { 0 };
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    Some(ordo_types::Timestamp::from_millis(
        i64::from(day.days_since_epoch()) * 86_400_000 + ((h * 60 + m) * 60 + s) * 1000,
    ))
}
