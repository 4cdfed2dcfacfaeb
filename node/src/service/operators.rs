use super::{Operator, Result, Service};
use saldo_api::operators::{Login, Password};
impl Service {
    pub async fn authenticate(&self, _login: &Login, _password: &Password) -> Result<Operator> { todo!() }
    pub async fn operator_still_allowed(&self, _operator: &Operator) -> std::result::Result<(), String> { todo!() }
}
