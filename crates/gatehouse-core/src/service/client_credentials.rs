//! RFC 6749 §4.4: the client credentials grant.

use super::{Subject, TokenService};
use crate::{Client, Confirmation, GrantType, OAuthError, Scope, TokenResponse};

impl TokenService {
    /// The client acts on its own behalf; `sub` is the client id.
    ///
    /// RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included". A `[[routes]]` entry
    /// may ask for one anyway (`refresh_on_client_credentials`, `docs/migrating.md`)
    /// for clients written against a server that issues it; it is issued only to a
    /// client with the `refresh_token` grant, the only one that could use it, and
    /// starts a login without a user.
    pub(super) async fn client_credentials(
        &self,
        client: &Client,
        requested: Option<&Scope>,
        with_refresh: bool,
        cnf: Option<&Confirmation>,
    ) -> Result<TokenResponse, OAuthError> {
        let scope = Scope::grant(requested, &client.scope, None)?;
        let now = self.clock.now();
        let family = if with_refresh {
            self.new_family(client, None, &scope, now)
        } else {
            None
        };
        let subject = Subject {
            sub: client.id.as_str(),
            username: None,
            sid: family.as_ref().map(|f| f.family_id.as_str()),
        };
        let access = self.prepare_access(client, &subject, &scope, now, cnf)?;
        let refresh_token = self.store_login(client, family.as_ref(), &access, now).await?;
        Ok(self.response(access, &scope, refresh_token, GrantType::ClientCredentials))
    }
}
