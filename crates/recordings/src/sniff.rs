//! Recognising the audio type from the first bytes of the body. Names and `Content-Type` headers
//! come from the uploader and prove nothing; the bytes decide.

/// How many leading bytes [`sniff`] needs at most: an Ogg page header with a full segment table
/// (27 + 255) and the start of its first packet.
pub const SNIFF_LEN: usize = 27 + 255 + 8;

/// An accepted audio format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioType {
    Wav,
    /// Opus in an Ogg container. Ogg with any other codec (Vorbis, FLAC, Speex) is refused: CA-3
    /// names Opus, and a player that handles one Ogg codec does not necessarily handle the rest.
    OggOpus,
    Mp3,
}

impl AudioType {
    pub const ALL: [AudioType; 3] = [AudioType::Wav, AudioType::OggOpus, AudioType::Mp3];

    /// The media type to serve the audio with.
    pub fn content_type(self) -> &'static str {
        match self {
            AudioType::Wav => "audio/wav",
            AudioType::OggOpus => "audio/ogg",
            AudioType::Mp3 => "audio/mpeg",
        }
    }

    /// The stable name to keep in a database column.
    pub fn as_str(self) -> &'static str {
        match self {
            AudioType::Wav => "wav",
            AudioType::OggOpus => "ogg_opus",
            AudioType::Mp3 => "mp3",
        }
    }

    /// The inverse of [`AudioType::as_str`].
    pub fn parse(value: &str) -> Option<AudioType> {
        AudioType::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

impl std::fmt::Display for AudioType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The audio type of a body that starts with `head` (at most [`SNIFF_LEN`] bytes are looked at;
/// pass fewer only when the body is that short).
pub fn sniff(head: &[u8]) -> Option<AudioType> {
    if is_wav(head) {
        Some(AudioType::Wav)
    } else if is_ogg_opus(head) {
        Some(AudioType::OggOpus)
    } else if is_id3(head) || is_mp3_frame(head) {
        Some(AudioType::Mp3)
    } else {
        None
    }
}

/// The 44-byte header of a WAV file of 16-bit mono PCM at 8 kHz (telephone audio) whose samples
/// take `data_len` bytes: what the demo, the benchmarks and the tests put before their samples.
pub fn wav_header(data_len: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(44);
    for field in [
        &b"RIFF"[..],
        &data_len.saturating_add(36).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),    // the fmt chunk's size
        &1u16.to_le_bytes(),     // PCM
        &1u16.to_le_bytes(),     // mono
        &8000u32.to_le_bytes(),  // samples a second
        &16000u32.to_le_bytes(), // bytes a second
        &2u16.to_le_bytes(),     // bytes a sample
        &16u16.to_le_bytes(),    // bits a sample
        b"data",
        &data_len.to_le_bytes(),
    ] {
        header.extend_from_slice(field);
    }
    header
}

fn is_wav(head: &[u8]) -> bool {
    head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE"
}

/// The first page of an Ogg/Opus stream is a beginning-of-stream page whose only packet is the
/// `OpusHead` identification header (RFC 7845 §3), so the check is exact rather than a guess.
fn is_ogg_opus(head: &[u8]) -> bool {
    const PAGE_HEADER: usize = 27;
    const BEGINNING_OF_STREAM: u8 = 0x02;
    if head.len() < PAGE_HEADER || &head[0..4] != b"OggS" || head[4] != 0 {
        return false;
    }
    if head[5] & BEGINNING_OF_STREAM == 0 {
        return false;
    }
    let segments = usize::from(head[26]);
    let payload = PAGE_HEADER + segments;
    head.get(payload..payload + 8) == Some(b"OpusHead".as_slice())
}

/// An ID3v2 tag (versions 2.2 to 2.4) in front of the MPEG frames.
fn is_id3(head: &[u8]) -> bool {
    head.len() >= 10
        && &head[0..3] == b"ID3"
        && (2..=4).contains(&head[3])
        && head[4] != 0xFF
        // The tag size is "syncsafe": the top bit of each of its four bytes is zero.
        && head[6..10].iter().all(|b| b & 0x80 == 0)
}

/// An MPEG audio frame header: 11 sync bits (0xFFE, which includes MPEG 2.5's 0xFFE and
/// MPEG 1/2's 0xFFF), a version that is not reserved, layer III, and a bitrate, sample rate and
/// emphasis that are not reserved or "bad".
fn is_mp3_frame(head: &[u8]) -> bool {
    let [b0, b1, b2, b3, ..] = *head else {
        return false;
    };
    let sync = b0 == 0xFF && b1 & 0xE0 == 0xE0;
    let version = (b1 >> 3) & 0b11;
    let layer = (b1 >> 1) & 0b11;
    let bitrate = b2 >> 4;
    let sample_rate = (b2 >> 2) & 0b11;
    let emphasis = b3 & 0b11;
    sync && version != 0b01
        && layer == 0b01
        && bitrate != 0
        && bitrate != 0b1111
        && sample_rate != 0b11
        && emphasis != 0b10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav() -> Vec<u8> {
        let mut v = b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00".to_vec();
        v.extend_from_slice(&[1, 0, 1, 0, 0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, 2, 0, 16, 0]);
        v
    }

    fn ogg_first_page(packet: &[u8]) -> Vec<u8> {
        let mut v = b"OggS".to_vec();
        v.push(0); // version
        v.push(0x02); // beginning of stream
        v.extend_from_slice(&[0; 8]); // granule position
        v.extend_from_slice(&[1, 0, 0, 0]); // serial
        v.extend_from_slice(&[0; 4]); // sequence
        v.extend_from_slice(&[0; 4]); // checksum
        v.push(1); // one segment
        v.push(u8::try_from(packet.len()).unwrap());
        v.extend_from_slice(packet);
        v
    }

    #[test]
    fn recognises_wav() {
        assert_eq!(sniff(&wav()), Some(AudioType::Wav));
    }

    #[test]
    fn recognises_ogg_opus_and_refuses_other_ogg_codecs() {
        let opus = ogg_first_page(b"OpusHead\x01\x02\x38\x01\x80\xBB\x00\x00\x00\x00\x00");
        assert_eq!(sniff(&opus), Some(AudioType::OggOpus));
        let vorbis = ogg_first_page(b"\x01vorbis\x00\x00\x00\x00\x02\x44\xAC\x00\x00");
        assert_eq!(sniff(&vorbis), None);
        let mut not_first_page = opus.clone();
        not_first_page[5] = 0;
        assert_eq!(sniff(&not_first_page), None);
        assert_eq!(sniff(&opus[..30]), None, "truncated before OpusHead");
    }

    #[test]
    fn recognises_mp3_with_id3_tag() {
        assert_eq!(sniff(b"ID3\x04\x00\x00\x00\x00\x01\x7F rest"), Some(AudioType::Mp3));
        assert_eq!(sniff(b"ID3\x04\x00\x00\x00\x00\x01\x80 rest"), None, "not syncsafe");
        assert_eq!(sniff(b"ID3\x09\x00\x00\x00\x00\x01\x00 rest"), None, "unknown version");
    }

    #[test]
    fn recognises_mp3_frame_sync() {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz.
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64, 0, 0]), Some(AudioType::Mp3));
        // MPEG-2 layer III, 64 kbit/s, 22.05 kHz.
        assert_eq!(sniff(&[0xFF, 0xF3, 0x80, 0xC4]), Some(AudioType::Mp3));
        // MPEG-2.5 layer III (sync 0xFFE), 8 kbit/s, 11.025 kHz.
        assert_eq!(sniff(&[0xFF, 0xE3, 0x10, 0x00]), Some(AudioType::Mp3));
    }

    #[test]
    fn refuses_invalid_frame_headers() {
        assert_eq!(sniff(&[0xFF, 0xFD, 0x90, 0x64]), None, "layer II");
        assert_eq!(sniff(&[0xFF, 0xEB, 0x90, 0x64]), None, "reserved version");
        assert_eq!(sniff(&[0xFF, 0xFB, 0xF0, 0x64]), None, "bad bitrate");
        assert_eq!(sniff(&[0xFF, 0xFB, 0x00, 0x64]), None, "free bitrate");
        assert_eq!(sniff(&[0xFF, 0xFB, 0x9C, 0x64]), None, "reserved sample rate");
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x66]), None, "reserved emphasis");
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90]), None, "too short");
    }

    #[test]
    fn refuses_other_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), None);
        assert_eq!(sniff(b"Hello, this is plain text and not audio at all."), None);
        assert_eq!(sniff(b"RIFF\x24\x08\x00\x00AVI LIST"), None, "RIFF but not WAVE");
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn names_round_trip() {
        for t in AudioType::ALL {
            assert_eq!(AudioType::parse(t.as_str()), Some(t));
        }
        assert_eq!(AudioType::parse("flac"), None);
        assert_eq!(AudioType::Wav.content_type(), "audio/wav");
        assert_eq!(AudioType::OggOpus.content_type(), "audio/ogg");
        assert_eq!(AudioType::Mp3.content_type(), "audio/mpeg");
    }
}
