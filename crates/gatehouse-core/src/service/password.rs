//! RFC 6749 §4.3: the resource owner password credentials grant.

use super::{Subject, TokenService};
use crate::grant::Credential;
use crate::{Client, ClientSecret, Confirmation, GrantType, OAuthError, Scope, TokenResponse};

impl TokenService {
    /// Logs a user in for `client`. With the `refresh_token` grant the login starts a
    /// token family, stored (with its first refresh token) before the answer leaves.
    ///
    /// An unknown user, a wrong password and a disabled user are the same
    /// [`OAuthError::LoginFailed`], answered after the same Argon2id work (an unknown
    /// user is checked against `dummy_password_hash`), so none can be told apart.
    pub(super) async fn password(
        &self,
        client: &Client,
        username: &str,
        password: &Credential,
        requested: Option<&Scope>,
        cnf: Option<&Confirmation>,
    ) -> Result<TokenResponse, OAuthError> {
        let user = self.stores.users.find_user(username).await?;
        let presented = ClientSecret::new(password.expose());
        let hash = user
            .as_ref()
            .map_or(&self.dummy_password_hash, |u| &u.password_hash);
        let verified = self.slow_hashes.verify(hash, &presented).await?;
        let user = match user {
            Some(user) if verified && !user.disabled => user,
            _ => return Err(OAuthError::LoginFailed),
        };
        let scope = Scope::grant(requested, &client.scope, user.scope.as_ref())?;
        let now = self.clock.now();

        let family = self.new_family(client, Some(&user.id.0), &scope, now);
        let subject = Subject {
            sub: &user.id.0,
            username: Some(&user.username),
            sid: family.as_ref().map(|f| f.family_id.as_str()),
        };
        let access = self.prepare_access(client, &subject, &scope, now, cnf)?;
        let refresh_token = self.store_login(client, family.as_ref(), &access, now).await?;
        Ok(self.response(access, &scope, refresh_token, GrantType::Password))
    }
}
