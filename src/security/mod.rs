//! What every listener does before it serves anyone: TLS (`[tls]`) and the
//! bearer-token check (`[auth]`), for HTTP (axum) and gRPC (tonic) alike.
//!
//! | listener | role |
//! |---|---|
//! | OTLP/gRPC, OTLP/HTTP | `ingest` |
//! | `POST /api/v1/sql`, `GET` on the API, `/metrics`, Flagger's hooks | `query` |
//! | other methods on the API (rollout actions), `/api/v1/admin/*` | `admin` |
//! | `GET /healthz` | none |

mod auth;
mod tls;

pub use auth::{RoleOf, api_role, grpc_interceptor, ingest_role, require_http};
pub use tls::{Tls, serve_http};
