//! A minimal, bounds-checked ISO BMFF box reader for checking what the writer produced.

/// One box: its type, where it starts in the parsed buffer, and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp4Box<'a> {
    /// The four-character type.
    pub kind: [u8; 4],
    /// Offset of the box header in the buffer that was parsed.
    pub offset: usize,
    /// The box size including its header.
    pub size: usize,
    /// The payload after the 8-byte header.
    pub body: &'a [u8],
}

impl Mp4Box<'_> {
    /// The type as text.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }
}

/// The sequence of boxes in `data` (stops at the first malformed header).
pub fn boxes(data: &[u8]) -> Vec<Mp4Box<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let size = size as usize;
        if size < 8 || pos + size > data.len() {
            break;
        }
        let kind = [data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]];
        out.push(Mp4Box {
            kind,
            offset: pos,
            size,
            body: &data[pos + 8..pos + size],
        });
        pos += size;
    }
    out
}

/// The child boxes of a container box body (skipping `skip` bytes of fields first).
pub fn children(body: &[u8], skip: usize) -> Vec<Mp4Box<'_>> {
    body.get(skip..).map(boxes).unwrap_or_default()
}

/// The first child of type `kind`.
pub fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<Mp4Box<'a>> {
    children(body, 0).into_iter().find(|b| &b.kind == kind)
}

/// Follows a path of plain container boxes (`["moov", "trak", "mdia"]`) from top-level `data`.
pub fn path<'a>(data: &'a [u8], names: &[&[u8; 4]]) -> Option<Mp4Box<'a>> {
    let (first, rest) = names.split_first()?;
    let mut cur = boxes(data).into_iter().find(|b| &b.kind == *first)?;
    for n in rest {
        cur = child(cur.body, n)?;
    }
    Some(cur)
}
