//! Mutations, one file per concern, merged into [`MutationRoot`].

use async_graphql::MergedObject;

mod account;
mod channels;
mod clips;
mod destinations;
mod keys;
mod policy;

/// The mutation root.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    account::AccountMutations,
    channels::ChannelMutations,
    keys::KeyMutations,
    destinations::DestinationMutations,
    policy::PolicyMutations,
    clips::ClipMutations,
    crate::chat::ChatMutations,
    crate::watch::FollowMutations,
    crate::studio::StudioMutations,
    crate::studio::StageMutations,
    crate::studio::LiveMutations,
);
