#include "images_page.hpp"

#include "push.hpp"
#include "ui_support.hpp"

#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTimer>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

namespace heirloom::console {

// The latest progress a push reported, read by the UI thread on a timer. The first report of
// each stage is also posted to the page at once, so even a push quicker than the timer shows
// every stage it went through.
class PushProgress : public trim::Progress {
  public:
    explicit PushProgress(ImagesPage* page) : page_(page) {}
    void update(std::string_view stage, std::uint64_t done, std::uint64_t total) override {
        std::lock_guard lock(mutex_);
        if (stage != stage_) // the page outlives the push: its destructor waits for it
            QMetaObject::invokeMethod(
                page_,
                [page = page_, s = std::string(stage), done, total] {
                    page->show_stage(s, done, total);
                },
                Qt::QueuedConnection);
        stage_ = stage;
        done_ = done;
        total_ = total;
    }
    void read(std::string& stage, std::uint64_t& done, std::uint64_t& total) const {
        std::lock_guard lock(mutex_);
        stage = stage_;
        done = done_;
        total = total_;
    }

  private:
    ImagesPage* page_;
    mutable std::mutex mutex_;
    std::string stage_;
    std::uint64_t done_ = 0;
    std::uint64_t total_ = 0;
};

namespace {

// Where pushes pack, shared with heirloom-admin so either reuses what the other packed.
fs::path push_cache(const std::string& host) {
    const char* cache = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    fs::path base = cache && *cache ? fs::path(cache) : fs::path(home ? home : "/tmp") / ".cache";
    return base / "heirloom-admin" / host / "repo";
}

struct ImagesAndEndpoints {
    Result<std::vector<Image>> images;
    Result<std::vector<Endpoint>> endpoints;
    Result<PolicyRevision> policy;
};

// A version spin box where 0 means "not set".
QSpinBox* version_box(const QString& none, const char* name, QWidget* parent) {
    auto* box = new QSpinBox(parent);
    box->setObjectName(QString::fromLatin1(name));
    box->setRange(0, 1'000'000);
    box->setSpecialValueText(none);
    box->setPrefix(QStringLiteral("v"));
    return box;
}

} // namespace

ImagesPage::ImagesPage(Connection connection, QWidget* parent)
    : QWidget(parent), connection_(std::move(connection)),
      cancel_flag_(std::make_shared<std::atomic<bool>>(false)) {
    push_pool_.setMaxThreadCount(1);
    tree_ = new QTreeWidget(this);
    tree_->setObjectName(QStringLiteral("images"));
    tree_->setHeaderLabels({tr("Image / version"), tr("Created"), tr("Disk size"), tr("Stored"),
                            tr("Pushed by"), tr("Endpoints running it")});
    tree_->setAlternatingRowColors(true);
    tree_->header()->setStretchLastSection(true);
    auto* refresh_button = new QPushButton(tr("&Refresh"), this);
    refresh_button->setObjectName(QStringLiteral("refresh_images"));

    image_name_ = new QComboBox(this);
    image_name_->setObjectName(QStringLiteral("push_image"));
    image_name_->setEditable(true);
    image_name_->setInsertPolicy(QComboBox::NoInsert);
    image_name_->setMinimumContentsLength(16);
    vhd_ = new QLineEdit(this);
    vhd_->setObjectName(QStringLiteral("push_vhd"));
    vhd_->setPlaceholderText(tr("the golden VM's disk, a fixed or dynamic VHD"));
    auto* browse = new QPushButton(tr("&Browse…"), this);
    connect(browse, &QPushButton::clicked, this, [this] {
        QString file = QFileDialog::getOpenFileName(this, tr("VHD to push"), QString(),
                                                    tr("VHD disks (*.vhd);;All files (*)"));
        if (!file.isEmpty())
            vhd_->setText(file);
    });
    auto* vhd_row = new QHBoxLayout;
    vhd_row->addWidget(vhd_, 1);
    vhd_row->addWidget(browse);
    push_button_ = new QPushButton(tr("&Push as a new version"), this);
    push_button_->setObjectName(QStringLiteral("push"));
    cancel_ = new QPushButton(tr("&Cancel push"), this);
    cancel_->setObjectName(QStringLiteral("cancel_push"));
    cancel_->setEnabled(false);
    progress_bar_ = new QProgressBar(this);
    progress_bar_->setObjectName(QStringLiteral("push_progress"));
    progress_bar_->setRange(0, 1000);
    progress_bar_->setValue(0);
    stage_ = new QLabel(this);
    stage_->setObjectName(QStringLiteral("push_stage"));
    auto* form = new QFormLayout;
    form->addRow(tr("&Image:"), image_name_);
    add_row(form, tr("&VHD:"), vhd_row, vhd_);
    auto* progress_row = new QHBoxLayout;
    progress_row->addWidget(progress_bar_, 1);
    progress_row->addWidget(push_button_);
    progress_row->addWidget(cancel_);
    auto* push_box = new QGroupBox(tr("Push a VHD as a new version"), this);
    auto* push_layout = new QVBoxLayout(push_box);
    push_layout->addLayout(form);
    push_layout->addLayout(progress_row);
    push_layout->addWidget(stage_);

    status_ = status_line(this);
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("Images and their versions; expand an image to see each "
                                 "version and the endpoints that hold it."),
                              this),
                   1);
    top->addWidget(refresh_button);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(tree_, 1);
    settings_image_ = new QLabel(tr("(choose an image above)"), this);
    settings_image_->setObjectName(QStringLiteral("settings_image"));
    minimum_ = version_box(tr("none"), "minimum_version", this);
    pinned_ = version_box(tr("latest"), "pinned_version", this);
    save_settings_ = new QPushButton(tr("Save roll-&out"), this);
    save_settings_->setObjectName(QStringLiteral("save_settings"));
    save_settings_->setEnabled(false);
    auto* settings_form = new QFormLayout;
    settings_form->addRow(tr("Image:"), settings_image_);
    settings_form->addRow(tr("&Minimum version:"), minimum_);
    settings_form->addRow(tr("Pi&nned to:"), pinned_);
    auto* settings_box = new QGroupBox(tr("Roll-out"), this);
    settings_box->setToolTip(tr("Endpoints refuse versions below the minimum; a pinned image "
                                "stays on that version instead of the latest."));
    auto* settings_layout = new QVBoxLayout(settings_box);
    settings_layout->addLayout(settings_form);
    settings_layout->addStretch(1);
    settings_layout->addWidget(save_settings_, 0, Qt::AlignRight);
    auto* bottom = new QHBoxLayout;
    bottom->addWidget(push_box, 3);
    bottom->addWidget(settings_box, 1);
    layout->addLayout(bottom);
    layout->addWidget(status_);

    poll_ = new QTimer(this);
    poll_->setInterval(100);
    connect(poll_, &QTimer::timeout, this, &ImagesPage::show_progress);
    connect(refresh_button, &QPushButton::clicked, this, &ImagesPage::refresh);
    connect(push_button_, &QPushButton::clicked, this,
            [this] { push(image_name_->currentText().trimmed(), vhd_->text().trimmed()); });
    connect(cancel_, &QPushButton::clicked, this, &ImagesPage::cancel_push);
    connect(tree_, &QTreeWidget::currentItemChanged, this, &ImagesPage::choose_image);
    connect(save_settings_, &QPushButton::clicked, this, &ImagesPage::save_settings);
}

ImagesPage::~ImagesPage() {
    cancel_flag_->store(true);
    push_pool_.waitForDone();
}

void ImagesPage::refresh() {
    run_in_background(
        this,
        [c = connection_] {
            return ImagesAndEndpoints{fetch_images(c), fetch_endpoints(c), fetch_policy(c)};
        },
        [this](ImagesAndEndpoints result) {
            if (!result.images)
                return show_error(status_, result.images.error());
            if (!result.endpoints)
                return show_error(status_, result.endpoints.error());
            if (!result.policy)
                return show_error(status_, result.policy.error());
            settings_ = std::move(result.policy->set.images);
            show_images(*result.images, *result.endpoints);
            Q_EMIT images_loaded();
        });
}

void ImagesPage::show_images(const std::vector<Image>& images,
                             const std::vector<Endpoint>& endpoints) {
    // Which endpoints hold each image version (not counting revoked ones).
    std::map<std::pair<std::string, std::uint64_t>, QStringList> holders;
    for (const auto& e : endpoints)
        for (const auto& i : e.images)
            if (!e.revoked)
                holders[{i.image, i.version}] << qs(e.hostname);
    QString typed = image_name_->currentText();
    QString chosen = settings_image_->text();
    image_name_->clear();
    tree_->clear();
    for (const auto& image : images) {
        image_name_->addItem(qs(image.name));
        int running = 0;
        for (const auto& [key, hosts] : holders)
            if (key.first == image.name)
                running += static_cast<int>(hosts.size());
        auto* top = new QTreeWidgetItem(
            tree_, {qs(image.name) + (image.latest ? tr(" (latest v%1)").arg(image.latest)
                                                   : tr(" (no version yet)")),
                    format_time(image.created), QString(), QString(), QString(),
                    counted(running, tr("endpoint"), tr("endpoints"))});
        std::vector<ImageVersion> newest_first = image.versions;
        std::sort(newest_first.begin(), newest_first.end(),
                  [](const auto& a, const auto& b) { return a.version > b.version; });
        for (auto v = newest_first.begin(); v != newest_first.end(); ++v) {
            const QStringList& hosts = holders[{image.name, v->version}];
            new QTreeWidgetItem(top, {tr("version %1").arg(v->version), format_time(v->created),
                                      format_size(v->virtual_size), format_size(v->object_bytes),
                                      qs(v->pushed_by),
                                      hosts.isEmpty() ? tr("none") : hosts.join(", ")});
        }
        top->setData(0, Qt::UserRole, qs(image.name));
        for (const auto& s : settings_)
            if (s.name == image.name && s.pinned_version)
                top->setText(0, top->text(0) + tr(", pinned to v%1").arg(*s.pinned_version));
        top->setExpanded(true);
        if (qs(image.name) == chosen)
            tree_->setCurrentItem(top);
    }
    image_name_->setEditText(typed);
    for (int col = 0; col < tree_->columnCount() - 1; ++col)
        tree_->resizeColumnToContents(col);
}

void ImagesPage::choose_image() {
    QTreeWidgetItem* item = tree_->currentItem();
    if (item && item->parent())
        item = item->parent();
    const policy::ImageRef* found = nullptr;
    std::string name = item ? ss(item->data(0, Qt::UserRole).toString()) : std::string();
    for (const auto& s : settings_)
        if (s.name == name)
            found = &s;
    save_settings_->setEnabled(found != nullptr);
    if (!found)
        return;
    settings_image_->setText(qs(found->name));
    minimum_->setValue(static_cast<int>(found->minimum_version.value_or(0)));
    pinned_->setValue(static_cast<int>(found->pinned_version.value_or(0)));
}

void ImagesPage::save_settings() {
    policy::ImageRef image{ss(settings_image_->text()), std::nullopt, std::nullopt};
    if (minimum_->value() > 0)
        image.minimum_version = static_cast<std::uint64_t>(minimum_->value());
    if (pinned_->value() > 0)
        image.pinned_version = static_cast<std::uint64_t>(pinned_->value());
    if (auto valid = policy::validate_image(image, "image"); !valid)
        return show_error(status_, valid.error());
    run_in_background(
        this, [c = connection_, image] { return save_image_settings(c, image); },
        [this, name = qs(image.name)](Status r) {
            if (!r)
                return show_error(status_, r.error());
            show_news(status_, tr("Roll-out of %1 saved.").arg(name));
            refresh();
        });
}

void ImagesPage::push(const QString& image, const QString& vhd) {
    if (pushing_)
        return;
    if (image.isEmpty() || vhd.isEmpty())
        return show_error(status_, {Errc::invalid_argument,
                                    "Choose an image name (a new name creates the image) and a "
                                    "VHD file."});
    if (auto valid = policy::check_id(ss(image), "image name"); !valid)
        return show_error(status_, valid.error());
    pushing_ = true;
    image_name_->setEditText(image);
    vhd_->setText(vhd);
    cancel_flag_ = std::make_shared<std::atomic<bool>>(false);
    progress_ = std::make_shared<PushProgress>(this);
    push_button_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_bar_->setValue(0);
    stage_->setText(tr("Starting…"));
    show_news(status_, tr("Pushing %1 to image %2…").arg(vhd, image));
    poll_->start();
    admin::PushOptions options;
    options.image = ss(image);
    options.vhd = ss(vhd);
    auto work = [c = connection_, options, cancel = cancel_flag_,
                 progress = progress_]() mutable -> Result<admin::PushResult> {
        auto api = HL_TRY(client::ApiClient::open(c.server));
        api->set_token(c.token);
        options.cache = push_cache(api->url().host);
        options.cancel = cancel.get();
        options.progress = progress.get();
        return admin::push_image(*api, c.token, options);
    };
    auto* watcher = new QFutureWatcher<Result<admin::PushResult>>(this);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher] {
        auto result = watcher->result();
        watcher->deleteLater();
        poll_->stop();
        pushing_ = false;
        push_button_->setEnabled(true);
        cancel_->setEnabled(false);
        refresh();
        if (!result) {
            stage_->setText(result.error().code == Errc::cancelled ? tr("Cancelled.")
                                                                   : tr("Failed."));
            show_error(status_, result.error());
            Q_EMIT push_finished(0, qs(result.error().message));
            return;
        }
        progress_bar_->setValue(progress_bar_->maximum());
        QString done = tr("Published %1 version %2: %3 objects, %4 of them new (%5 uploaded).")
                           .arg(qs(result->image))
                           .arg(result->version)
                           .arg(result->objects)
                           .arg(result->objects_uploaded)
                           .arg(format_size(result->bytes_uploaded));
        stage_->setText(tr("Done."));
        show_news(status_, done);
        Q_EMIT push_finished(result->version, done);
    });
    watcher->setFuture(QtConcurrent::run(&push_pool_, std::move(work)));
}

void ImagesPage::cancel_push() {
    if (!pushing_)
        return;
    cancel_flag_->store(true);
    cancel_->setEnabled(false);
    stage_->setText(tr("Cancelling: stopping at the next step…"));
}

void ImagesPage::show_progress() {
    if (!progress_)
        return;
    std::string stage;
    std::uint64_t done = 0, total = 0;
    progress_->read(stage, done, total);
    if (!stage.empty())
        show_stage(stage, done, total);
}

void ImagesPage::show_stage(const std::string& stage, std::uint64_t done, std::uint64_t total) {
    if (!pushing_)
        return; // a late report of a push that already ended
    // Packing is the first half of the bar, uploading the second.
    double part = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
    int value =
        stage == "upload" ? 500 + static_cast<int>(500 * part) : static_cast<int>(500 * part);
    progress_bar_->setValue(std::max(progress_bar_->value(), value));
    Q_EMIT progress_shown(qs(stage), progress_bar_->value());
    if (cancel_flag_->load())
        return;
    stage_->setText(
        stage == "upload"
            ? tr("Uploading objects the server lacks: %1 of %2").arg(done).arg(total)
            : tr("Packing the disk: %1 of %2").arg(format_size(done), format_size(total)));
}

} // namespace heirloom::console
