//! `hosting-app admin token|password` on the backend under test (SQLite, or PostgreSQL
//! and Redis in the cluster run), beside a running server: what they store works.
//! `tests/first_run.rs` runs the same commands through the binary.

use hosting_app::admin;
use hosting_app::http::auth::verify_password;

use crate::helpers::TestApp;

#[tokio::test]
async fn admin_commands_issue_a_working_token_and_set_a_password_beside_a_running_server() {
    // Arrange
    let app = TestApp::spawn().await;
    let password = "correct horse battery";

    // Act
    let issued = admin::issue_token(&app.config, "admin", "recovery")
        .await
        .expect("a token");
    let username = admin::set_password(&app.config, "Admin", password)
        .await
        .expect("the password is set");

    // Assert: the token authenticates, the password verifies
    let response = app
        .get(&issued.secret, "/whoami")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let me: hosting_api::User = response.json().await.expect("user json");
    assert_eq!(
        (me.username.as_str(), username.as_str()),
        ("admin", "admin")
    );
    let user = app
        .state
        .store
        .user_by_name("admin")
        .await
        .expect("store")
        .expect("admin");
    assert!(verify_password(user.password_hash.as_deref(), password));
}

#[tokio::test]
async fn admin_commands_name_the_users_there_are_when_the_user_does_not_exist() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let error = admin::issue_token(&app.config, "nobody", "recovery")
        .await
        .err()
        .expect("refused")
        .to_string();

    // Assert
    assert!(
        error.contains("\"nobody\"") && error.contains("admin"),
        "{error}"
    );
}
