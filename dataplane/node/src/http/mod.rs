//! The HTTP/1.1 origin: a bounded request parser, a response writer, the routes,
//! the browser pages, and the per-connection driver.

pub mod conn;
pub mod origin;
pub mod request;
pub mod response;
pub mod signed;
pub mod vod;
pub mod vod_dash;
pub mod web;
pub mod webrtc;
