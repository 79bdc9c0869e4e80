fn main() {
    console_app::start();
}
