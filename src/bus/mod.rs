//! The message bus: the embedded nats-server, every subject name, the wire types and the
//! durable JetStream job queue. Actors talk to each other through these subjects.

pub mod embedded;
pub mod pid_file;
pub mod queue;
pub mod results;
mod spawner;
pub mod subjects;
pub mod wire;
