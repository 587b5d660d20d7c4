//! AdmissionReview v1/v1beta1 on the wire. (stub: being written)
