//! Groups (`groups.md`): the client side of [`umbra_proto::group`] — create,
//! invite, poll the group swarm, rekey, revoke. Work in progress (issue 8).
