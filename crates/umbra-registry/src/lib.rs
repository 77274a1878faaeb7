//! `umbra-registry`: a registry authority (issue 11). Work in progress.
