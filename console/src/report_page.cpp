#include "report_page.hpp"

#include "rollout_chart.hpp"
#include "ui_support.hpp"

#include <QComboBox>
#include <QDateTime>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSaveFile>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

namespace heirloom::console {
namespace {

struct Period {
    const char* label;
    std::int64_t seconds; // 0 = all time
};
constexpr Period periods[] = {{"last 24 hours", 86400},
                              {"last 7 days", 7 * 86400},
                              {"last 30 days", 30 * 86400},
                              {"all time", 0}};

struct Report {
    Result<std::vector<Event>> events;
    Result<std::vector<Event>> syncs;
};

} // namespace

ReportPage::ReportPage(Connection connection, QWidget* parent)
    : QWidget(parent), connection_(std::move(connection)) {
    type_ = new QComboBox(this);
    type_->setObjectName(QStringLiteral("event_type"));
    type_->addItem(tr("every type"));
    for (const auto& t : event_types())
        type_->addItem(qs(t));
    user_ = new QLineEdit(this);
    user_->setObjectName(QStringLiteral("event_user"));
    user_->setPlaceholderText(tr("every user"));
    period_ = new QComboBox(this);
    period_->setObjectName(QStringLiteral("event_period"));
    for (const auto& p : periods)
        period_->addItem(tr(p.label));
    period_->setCurrentIndex(1);
    auto* apply = new QPushButton(tr("&Show"), this);
    apply->setObjectName(QStringLiteral("show_events"));
    auto* export_button = new QPushButton(tr("&Export CSV…"), this);
    export_button->setObjectName(QStringLiteral("export_csv"));
    auto* filters = new QHBoxLayout;
    filters->addWidget(new QLabel(tr("&Type:"), this));
    static_cast<QLabel*>(filters->itemAt(0)->widget())->setBuddy(type_);
    filters->addWidget(type_);
    filters->addWidget(new QLabel(tr("&User:"), this));
    static_cast<QLabel*>(filters->itemAt(2)->widget())->setBuddy(user_);
    filters->addWidget(user_, 1);
    filters->addWidget(new QLabel(tr("&Period:"), this));
    static_cast<QLabel*>(filters->itemAt(4)->widget())->setBuddy(period_);
    filters->addWidget(period_);
    filters->addWidget(apply);
    filters->addWidget(export_button);

    table_ = new QTableWidget(0, 8, this);
    table_->setObjectName(QStringLiteral("events"));
    table_->setHorizontalHeaderLabels({tr("Time"), tr("User"), tr("Host"), tr("Type"),
                                       tr("Workspace"), tr("Image"), tr("Version"), tr("Message")});
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->verticalHeader()->hide();
    table_->setWordWrap(false);

    chart_image_ = new QComboBox(this);
    chart_image_->setObjectName(QStringLiteral("chart_image"));
    chart_ = new RolloutChart(this);
    auto* chart_box = new QWidget(this);
    auto* chart_layout = new QVBoxLayout(chart_box);
    chart_layout->setContentsMargins(0, 0, 0, 0);
    auto* chart_row = new QHBoxLayout;
    chart_row->addWidget(new QLabel(tr("Roll-out of &image:"), this));
    static_cast<QLabel*>(chart_row->itemAt(0)->widget())->setBuddy(chart_image_);
    chart_row->addWidget(chart_image_);
    chart_row->addStretch(1);
    chart_layout->addLayout(chart_row);
    chart_layout->addWidget(chart_, 1);

    auto* splitter = new QSplitter(Qt::Vertical, this);
    splitter->addWidget(table_);
    splitter->addWidget(chart_box);
    splitter->setChildrenCollapsible(false);
    splitter->setStretchFactor(0, 3);
    splitter->setStretchFactor(1, 2);
    status_ = status_line(this);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(filters);
    layout->addWidget(splitter, 1);
    layout->addWidget(status_);

    connect(apply, &QPushButton::clicked, this, &ReportPage::refresh);
    connect(user_, &QLineEdit::returnPressed, this, &ReportPage::refresh);
    connect(export_button, &QPushButton::clicked, this, [this] {
        QString file = QFileDialog::getSaveFileName(this, tr("Export the report"),
                                                    QStringLiteral("heirloom-events.csv"),
                                                    tr("CSV files (*.csv)"));
        if (!file.isEmpty())
            export_csv(file);
    });
    connect(chart_image_, &QComboBox::currentIndexChanged, this, &ReportPage::show_rollout);
}

EventFilter ReportPage::filter() const {
    EventFilter f;
    if (type_->currentIndex() > 0)
        f.type = ss(type_->currentText());
    f.user = ss(user_->text().trimmed());
    std::int64_t seconds = periods[period_->currentIndex()].seconds;
    if (seconds > 0)
        f.since = QDateTime::currentSecsSinceEpoch() - seconds;
    return f;
}

void ReportPage::refresh() {
    show_news(status_, tr("Loading the report…"));
    EventFilter sync_filter;
    sync_filter.type = "sync-done";
    sync_filter.limit = 100000;
    run_in_background(
        this,
        [c = connection_, f = filter(), sync_filter] {
            return Report{fetch_events(c, f), fetch_events(c, sync_filter)};
        },
        [this](Report report) {
            if (!report.events)
                return show_error(status_, report.events.error());
            if (!report.syncs)
                return show_error(status_, report.syncs.error());
            table_->setRowCount(0);
            for (const auto& e : *report.events) {
                int row = table_->rowCount();
                table_->insertRow(row);
                QStringList cells = {format_time(e.time),
                                     qs(e.user),
                                     qs(e.hostname),
                                     qs(e.type),
                                     qs(e.workspace),
                                     qs(e.image),
                                     e.version ? QString::number(e.version) : QString(),
                                     qs(e.message)};
                for (int col = 0; col < cells.size(); ++col) {
                    auto* item = new QTableWidgetItem(cells[col]);
                    item->setToolTip(cells[col]);
                    table_->setItem(row, col, item);
                }
            }
            table_->resizeColumnsToContents();
            syncs_ = std::move(*report.syncs);
            QString keep = chart_image_->currentText();
            chart_image_->blockSignals(true);
            chart_image_->clear();
            for (const auto& image : rollout_images(syncs_))
                chart_image_->addItem(qs(image));
            chart_image_->setCurrentIndex(std::max(0, chart_image_->findText(keep)));
            chart_image_->blockSignals(false);
            show_rollout();
            show_news(status_, counted(static_cast<long long>(report.events->size()), tr("event."),
                                       tr("events.")));
            Q_EMIT report_loaded();
        });
}

void ReportPage::show_rollout() {
    QString image = chart_image_->currentText();
    chart_->set_rollout(image,
                        image.isEmpty() ? std::vector<RolloutPoint>{} : rollout(syncs_, ss(image)));
}

void ReportPage::export_csv(const QString& file) {
    show_news(status_, tr("Exporting…"));
    run_in_background(
        this, [c = connection_, f = filter()] { return fetch_events_csv(c, f); },
        [this, file](Result<std::string> csv) {
            if (!csv) {
                show_error(status_, csv.error());
                Q_EMIT exported(false);
                return;
            }
            QSaveFile out(file);
            if (!out.open(QIODevice::WriteOnly) ||
                out.write(csv->data(), static_cast<qint64>(csv->size())) !=
                    static_cast<qint64>(csv->size()) ||
                !out.commit()) {
                show_error(status_, {Errc::io,
                                     "Could not write " + ss(file) + ": " + ss(out.errorString())});
                Q_EMIT exported(false);
                return;
            }
            show_news(status_, tr("Report saved in %1.").arg(file));
            Q_EMIT exported(true);
        });
}

} // namespace heirloom::console
