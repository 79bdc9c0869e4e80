fn main() {
    widget_app::start();
}
