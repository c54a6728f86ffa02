//! The README's SDK example, `crates/gatehouse-client/examples/quickstart.rs`, run
//! against a real server set up as the README's Quickstart sets up its own: a client
//! created with `--scope "read write"` and nothing else.

#[allow(dead_code)]
#[path = "../../../gatehouse-client/examples/quickstart.rs"]
mod quickstart;

use gatehouse_client::SecretString;

use crate::helpers::*;

backend_tests! {
    /// The example gets a token of the client's full scope, is served the same
    /// token a second time, and the server introspects it as active.
    async fn readme_sdk_example_works_against_the_quickstart_server(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;
        let client = db.create_client("reports", &["--scope", "read write"]).await;
        let issuer = server.url("");

        let report = quickstart::quickstart(&issuer, &client.id, SecretString::from(client.secret.clone()), None)
            .await
            .expect("the example runs");
        assert_eq!(report.scope, "read write");
        assert!(report.cached, "the second call is served from the cache");
        assert!((3500..3600).contains(&report.expires_in), "expires in {} s", report.expires_in);
        let answer = &report.introspection;
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["client_id"], client.id.as_str(), "{answer}");
        assert_eq!(answer["scope"], "read write", "{answer}");
        assert_eq!(answer["iss"], issuer.as_str(), "{answer}");
        assert!(answer.get("username").is_none(), "a client_credentials token has no user: {answer}");

        let narrowed = quickstart::quickstart(&issuer, &client.id, SecretString::from(client.secret.clone()), Some("read"))
            .await
            .expect("the example runs with GATEHOUSE_SCOPE");
        assert_eq!(narrowed.scope, "read");
        assert_eq!(narrowed.introspection["scope"], "read");

        let refused = quickstart::quickstart(&issuer, &client.id, SecretString::from("wrong".to_owned()), None).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("invalid_client"), "{message}");
    }
}
