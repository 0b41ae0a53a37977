//! The message bus: the embedded nats-server (and which binary and version it is), every subject name, the wire types and the
//! durable JetStream job queue. Actors talk to each other through these subjects.

pub mod embedded;
pub mod pid_file;
pub mod queue;
pub mod results;
pub mod server_bin;
pub mod server_version;
pub mod setup;
mod spawner;
pub mod subjects;
pub mod wire;
