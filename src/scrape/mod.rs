//! Scraping the replicas: one loop per replica ([`manager`]) doing one bounded, negotiated,
//! parsed scrape per interval ([`fetch`]), each outcome handed to the merge store.

pub mod fetch;
pub mod manager;

pub use fetch::{ClientError, GroupClient, ScrapeError, Scraped, decode};
pub use manager::ScrapeManager;
