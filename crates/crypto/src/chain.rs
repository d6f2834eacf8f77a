//! The step of the audit log's hash chain (AU-5): each entry's hash covers the previous entry's
//! hash and the entry's canonical encoding, so changing, removing or reordering an entry breaks
//! every later link.

use ring::digest::{Context, SHA256};

pub type ChainHash = [u8; 32];

/// The "previous hash" of the first entry of a chain.
pub const CHAIN_GENESIS: ChainHash = [0u8; 32];

const DOMAIN: &[u8] = b"rekisteri/audit-chain/v1\0";

pub fn chain_step(previous: &ChainHash, canonical_entry: &[u8]) -> ChainHash {
    let mut hasher = ChainHasher::new(previous);
    hasher.update(canonical_entry);
    hasher.finish()
}

/// The same step as [`chain_step`], fed the canonical entry piece by piece: verification hashes
/// an entry straight from the database row without assembling its encoding first. Small pieces
/// are gathered into whole blocks before they reach SHA-256.
pub struct ChainHasher {
    context: Context,
    pending: [u8; PENDING],
    len: usize,
}

const PENDING: usize = 256;

impl ChainHasher {
    pub fn new(previous: &ChainHash) -> Self {
        let mut context = Context::new(&SHA256);
        context.update(DOMAIN);
        context.update(previous);
        Self {
            context,
            pending: [0u8; PENDING],
            len: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(free) = self.pending.get_mut(self.len..self.len + bytes.len()) {
            free.copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.flush();
        match self.pending.get_mut(..bytes.len()) {
            Some(free) => {
                free.copy_from_slice(bytes);
                self.len = bytes.len();
            }
            None => self.context.update(bytes),
        }
    }

    fn flush(&mut self) {
        self.context.update(&self.pending[..self.len]);
        self.len = 0;
    }

    pub fn finish(mut self) -> ChainHash {
        self.flush();
        let mut out = [0u8; 32];
        out.copy_from_slice(self.context.finish().as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::to_hex;

    #[test]
    fn chain_step_is_sha256_over_domain_previous_and_entry() {
        // Computed independently: sha256(b"rekisteri/audit-chain/v1\0" + 32 zero bytes + b"entry")
        let hash = chain_step(&CHAIN_GENESIS, b"entry");
        let mut input = DOMAIN.to_vec();
        input.extend_from_slice(&[0u8; 32]);
        input.extend_from_slice(b"entry");
        assert_eq!(hash.as_slice(), ring::digest::digest(&SHA256, &input).as_ref());
        assert_ne!(chain_step(&hash, b"a"), chain_step(&CHAIN_GENESIS, b"a"));
        assert_eq!(to_hex(&hash).len(), 64);
    }

    #[test]
    fn the_hasher_fed_in_pieces_equals_the_step() {
        let entry: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let previous = chain_step(&CHAIN_GENESIS, b"before");
        for cuts in [&[][..], &[1, 5, 300, 301, 1000][..], &[255, 256, 257, 600, 1999][..]] {
            let mut hasher = ChainHasher::new(&previous);
            let mut from = 0;
            for &cut in cuts.iter().chain([entry.len()].iter()) {
                hasher.update(&entry[from..cut]);
                from = cut;
            }
            assert_eq!(hasher.finish(), chain_step(&previous, &entry));
        }
        let mut input = DOMAIN.to_vec();
        input.extend_from_slice(&previous);
        input.extend_from_slice(&entry);
        assert_eq!(
            chain_step(&previous, &entry).as_slice(),
            ring::digest::digest(&SHA256, &input).as_ref()
        );
    }

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2 example "abc".
        let d = ring::digest::digest(&SHA256, b"abc");
        assert_eq!(
            to_hex(d.as_ref()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
