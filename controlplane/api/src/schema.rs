//! The schema: roots, limits, and the SDL kept in `schemas/graphql/schema.graphql`.

use async_graphql::Schema;

use crate::mutation::MutationRoot;
use crate::query::QueryRoot;
use crate::state::ApiState;
use crate::subscription::SubscriptionRoot;

/// The API schema type.
pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema over `state`, with its depth and complexity limits.
pub fn build_schema(state: &ApiState) -> ApiSchema {
    let cfg = state.config();
    let mut b = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .data(state.clone())
    .limit_depth(cfg.max_depth)
    .limit_complexity(cfg.max_complexity)
    .limit_recursive_depth(32)
    .limit_directives(16)
    .extension(crate::ws::WsGuard);
    if !cfg.introspection {
        b = b.disable_introspection();
    }
    b.finish()
}

/// The schema in SDL, as committed in `schemas/graphql/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl()
}
