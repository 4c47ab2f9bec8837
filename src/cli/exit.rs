//! Exit codes shared by the commands (clap's own usage errors exit 2).

/// Exit code for an invalid configuration (EX_USAGE of sysexits.h).
pub const EXIT_CONFIG: u8 = 64;
