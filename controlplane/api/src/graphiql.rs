//! The GraphiQL page served on `GET /graphql` to browsers.

/// HTML of the page: GraphiQL with graphql-ws for subscriptions. Headers typed into
/// GraphiQL's header editor (e.g. `{"Authorization": "Bearer …"}`) are also sent as the
/// graphql-ws `connection_init` payload.
pub const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>weir GraphQL</title>
<link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
</head>
<body style="margin:0">
<div id="graphiql" style="height:100vh">Loading GraphiQL…</div>
<script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
<script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
<script crossorigin src="https://unpkg.com/graphql-ws@5/umd/graphql-ws.min.js"></script>
<script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
<script>
  const url = location.origin + location.pathname;
  const wsUrl = url.replace(/^http/, 'ws');
  const headers = () => {
    try { return JSON.parse(localStorage.getItem('graphiql:headers') || '{}'); } catch (e) { return {}; }
  };
  const wsClient = graphqlWs.createClient({ url: wsUrl, connectionParams: headers, lazy: true });
  const fetcher = GraphiQL.createFetcher({ url, wsClient });
  ReactDOM.createRoot(document.getElementById('graphiql'))
    .render(React.createElement(GraphiQL, { fetcher, shouldPersistHeaders: true }));
</script>
</body>
</html>
"#;
