//! TEMPORARY: stands in for the credentials of branch `scim` until they are merged.

use secrecy::SecretString;

use super::{Operations, Principal, Result};

pub struct AccessKeyForSigning {
    pub principal: Principal,
    pub secret: SecretString,
}

impl Operations {
    pub async fn access_key_for_signing(
        &self,
        _key_id: String,
        _client_ip: Option<String>,
    ) -> Result<Option<AccessKeyForSigning>> {
        Ok(None)
    }
}
