//! Attachments (`attachments.md`): encrypt, upload in chunks through onion
//! paths, download and verify. Work in progress (issue 9).
