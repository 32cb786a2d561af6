//! Client certificates as `client_allowed_sans` reads them: any bytes through the DER reader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(names) = telltale_auth::san::subject_alt_names(data) {
        // Every name came from inside the input.
        assert!(names.iter().all(|n| n.len() <= data.len() * 3));
    }
});
