//! The HTTP rules behind tower-http's classifier traits.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::io;

use http::{Request, Response};
use tower_http::classify::{
    ClassifiedResponse, ClassifyResponse, MakeClassifier, NeverClassifyEos,
};

use super::{Classifier, FailureClass, HttpClassifier, TransientCause, classify_error_chain};
use crate::Clock;

/// [`HttpClassifier`] with a [`Clock`], for tower-http.
///
/// tower-http's classifiers take no time argument, so this one reads the clock itself. Use it with
/// `TraceLayer::new(ClockedClassifier::new(clock))` so traces report the same [`FailureClass`]
/// the layers act on.
#[derive(Clone, Copy, Debug)]
pub struct ClockedClassifier {
    classifier: HttpClassifier,
    clock: Clock,
}

impl ClockedClassifier {
    /// The default HTTP rules, reading time from `clock`.
    pub fn new(clock: Clock) -> Self {
        Self::with_classifier(HttpClassifier::new(), clock)
    }

    /// The given rules, reading time from `clock`.
    pub fn with_classifier(classifier: HttpClassifier, clock: Clock) -> Self {
        Self { classifier, clock }
    }
}

impl MakeClassifier for ClockedClassifier {
    type Classifier = Self;
    type FailureClass = FailureClass;
    type ClassifyEos = NeverClassifyEos<FailureClass>;

    fn make_classifier<B>(&self, _req: &Request<B>) -> Self::Classifier {
        *self
    }
}

impl ClassifyResponse for ClockedClassifier {
    type FailureClass = FailureClass;
    type ClassifyEos = NeverClassifyEos<FailureClass>;

    fn classify_response<B>(
        self,
        res: &Response<B>,
    ) -> ClassifiedResponse<Self::FailureClass, Self::ClassifyEos> {
        ClassifiedResponse::Ready(self.classifier.classify_response(res, &self.clock))
    }

    fn classify_error<E>(self, error: &E) -> Self::FailureClass
    where
        E: fmt::Display + 'static,
    {
        // tower-http only promises `Display`; look for the error types stacks actually use.
        let any = error as &dyn Any;
        if let Some(boxed) = any.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
            return classify_error_chain(&**boxed);
        }
        if let Some(io) = any.downcast_ref::<io::Error>() {
            return classify_error_chain(io);
        }
        if any.is::<tower::timeout::error::Elapsed>() || any.is::<tokio::time::error::Elapsed>() {
            return FailureClass::Transient(TransientCause::Timeout);
        }
        FailureClass::Transient(TransientCause::Other)
    }
}
