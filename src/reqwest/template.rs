//! [`Template`]: a request built once and cloned for every attempt.

use ::reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use ::reqwest::{Client, Request, RequestBuilder};

use super::HttpError;
use super::error::Target;

/// A built request kept to be sent again: each attempt sends a clone of it.
pub(crate) struct Template {
    client: Client,
    request: Result<Request, HttpError>,
}

impl Template {
    pub(crate) fn new(builder: RequestBuilder) -> Self {
        let (client, request) = builder.build_split();
        Template {
            client,
            request: request.map_err(|e| Target::default().transport(e)),
        }
    }

    /// A fresh copy of the request, or why there is none: the builder
    /// failed (a bad URL or header), or its body is a stream that can be
    /// sent only once. Both are permanent, so they end a poller at its first
    /// attempt.
    pub(crate) fn request(&self) -> Result<Request, HttpError> {
        let request = self.request.as_ref().map_err(Clone::clone)?;
        request.try_clone().ok_or_else(|| {
            Target::of(request).builder(
                "the request's body is a stream that cannot be cloned, so it cannot be sent again; \
                 give it a body of bytes",
            )
        })
    }

    /// A header the caller set on the request, if the request was built.
    pub(crate) fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.request.as_ref().ok()?.headers().get(name)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The client and the request itself, to send it once.
    pub(crate) fn into_parts(self) -> (Client, Result<Request, HttpError>) {
        (self.client, self.request)
    }
}

/// Sets `Accept` unless the caller chose one.
pub(crate) fn accept(request: &mut Request, value: &'static str) {
    request
        .headers_mut()
        .entry(ACCEPT)
        .or_insert(HeaderValue::from_static(value));
}
