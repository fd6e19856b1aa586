#include "guest/windows_app_scan.hpp"

#include "guest/windows_apps.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

namespace heirloom::guest {

namespace {

using Warn = std::function<void(std::string_view)>;

// Up to max_folder_entries names of a folder, sorted, and whether there were more.
struct Listing {
    std::vector<std::string> names;
    bool truncated = false;
};

Listing list_folder(const fs::path& dir) {
    Listing listing;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (listing.names.size() == max_folder_entries) {
            listing.truncated = true;
            break;
        }
        listing.names.push_back(it->path().filename().string());
    }
    std::sort(listing.names.begin(), listing.names.end());
    return listing;
}

// A name fit for a log line: control characters shown as '?'.
std::string printable(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            c = '?';
    return out;
}

std::string size_text(std::uint64_t bytes) {
    if (bytes % (1u << 20) == 0)
        return std::to_string(bytes >> 20) + " MiB";
    return std::to_string(bytes) + " bytes";
}

bool is_exe_name(std::string_view name) {
    return name.size() > 4 &&
           windows_path_detail::iequals_ascii(name.substr(name.size() - 4), ".exe");
}

bool is_plain_file(const fs::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A program found in a folder of C:\Apps.
struct Program {
    std::string windows_path; // C:\Apps\<folder>\<file>, as the strict parser took it
    std::string stem;         // the file's name without ".exe"
    fs::path file;            // canonical, inside drive_c
};

// Reads programs for their icons within the scan's byte budget.
class IconReader {
  public:
    IconReader(const WindowsAppSources& sources, const Warn& warn)
        : sources_(sources), warn_(warn), budget_(sources.max_read_bytes) {}

    std::vector<std::uint8_t> icon_of(const Program& program) {
        if (!sources_.icon)
            return {};
        auto bytes = read(program);
        if (!bytes)
            return {};
        auto png = sources_.icon(*bytes);
        if (!png) {
            warn_(program.windows_path + ": published without an icon: " + png.error().message);
            return {};
        }
        if (png->size() > max_icon_bytes || !is_png(*png)) {
            warn_(program.windows_path + ": published without an icon: its icon is not a PNG of "
                                         "at most 256 KiB");
            return {};
        }
        return std::move(*png);
    }

  private:
    std::optional<std::vector<std::uint8_t>> read(const Program& program) {
        auto refuse = [&](const std::string& why) {
            warn_(program.windows_path + ": published without an icon: " + why);
            return std::nullopt;
        };
        // O_NONBLOCK: a FIFO put there after the checks must not stall the guest.
        int fd = ::open(program.file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return refuse(std::string("cannot open it: ") + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            return refuse("not a regular file");
        }
        auto size = static_cast<std::uint64_t>(st.st_size);
        if (size > sources_.max_exe_bytes || size > budget_) {
            ::close(fd);
            return refuse(size > sources_.max_exe_bytes
                              ? "larger than " + size_text(sources_.max_exe_bytes)
                              : "the programs read for icons in one scan are larger than " +
                                    size_text(sources_.max_read_bytes));
        }
        budget_ -= size;
        std::vector<std::uint8_t> bytes(size);
        std::size_t done = 0;
        while (done < bytes.size()) {
            ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
        if (done != bytes.size())
            return refuse("it could not be read whole");
        return bytes;
    }

    const WindowsAppSources& sources_;
    const Warn& warn_;
    std::uint64_t budget_;
};

// The programs directly inside one folder of C:\Apps, sorted by file name.
std::vector<Program> programs_in(const fs::path& apps_dir, const std::string& apps_name,
                                 const std::string& folder, const fs::path& drive_c,
                                 const Warn& warn) {
    std::string shown = printable("C:\\" + apps_name + "\\" + folder);
    if (folder.find('\\') != std::string::npos) {
        warn(shown + ": skipped: a backslash in a folder name would read as two folders");
        return {};
    }
    std::error_code ec;
    fs::path real = fs::canonical(apps_dir / folder, ec);
    if (ec) {
        warn(shown + ": skipped: " + ec.message());
        return {};
    }
    if (!is_inside(real, drive_c)) {
        warn(shown + ": skipped: it leads out of drive C:");
        return {};
    }
    if (!fs::is_directory(real, ec))
        return {}; // a file beside the folders, such as a read-me
    Listing files = list_folder(real);
    if (files.truncated)
        warn(shown + ": holds more than " + std::to_string(max_folder_entries) +
             " entries: looking at some of them only");
    std::vector<Program> programs;
    for (const auto& file : files.names) {
        if (!is_exe_name(file))
            continue;
        std::string text = "C:\\" + apps_name + "\\" + folder + "\\" + file;
        if (file.find('\\') != std::string::npos) {
            warn(printable(text) + ": skipped: a backslash in a file name would read as a folder");
            continue;
        }
        auto parsed = parse_windows_program_path(text);
        if (!parsed) {
            warn(parsed.error().message + ": skipped");
            continue;
        }
        fs::path target = fs::canonical(real / file, ec);
        if (ec || !is_inside(target, drive_c) || !is_plain_file(target)) {
            warn(printable(text) + ": skipped: not a program file inside drive C:");
            continue;
        }
        programs.push_back({parsed->text(), file.substr(0, file.size() - 4), target});
    }
    return programs;
}

// Whether one more app fits in the list, and if not says so.
bool has_room(const std::map<std::string, InstalledApp>& apps, std::size_t max_apps,
              std::string_view next, const Warn& warn) {
    if (apps.size() < max_apps)
        return true;
    warn("more than " + std::to_string(max_apps) + " Windows programs: " + std::string(next) +
         " and the rest are not published");
    return false;
}

// Whether id is still free, and if not says so.
bool id_is_free(const std::map<std::string, InstalledApp>& apps, const std::string& id,
                std::string_view next, const Warn& warn) {
    if (!apps.contains(id))
        return true;
    warn(std::string(next) + ": skipped: another program already has the id " + id);
    return false;
}

void publish(std::map<std::string, InstalledApp>& apps, InstalledApp app, const Warn& warn) {
    if (auto checked = encode(GuestMessage(AppList{{app.app}})); !checked) {
        warn(app.app.command + ": skipped: " + checked.error().message);
        return;
    }
    std::string id = app.app.id;
    apps.try_emplace(id, std::move(app));
}

InstalledApp windows_app(std::string id, std::string name, const Program& program,
                         IconReader& icons) {
    InstalledApp installed;
    installed.argv = {program.windows_path};
    installed.app.id = std::move(id);
    installed.app.name = clean_app_name(name);
    if (installed.app.name.empty())
        installed.app.name = installed.app.id;
    installed.app.command = program.windows_path;
    installed.app.icon_png = icons.icon_of(program);
    return installed;
}

// The programs of C:\Apps; false once the list is full.
bool scan_apps_folder(const WindowsAppSources& sources, const fs::path& drive_c,
                      std::map<std::string, InstalledApp>& apps, IconReader& icons,
                      const Warn& warn) {
    auto apps_name = find_name_ignoring_case(drive_c, windows_apps_folder);
    if (!apps_name)
        return true;
    std::error_code ec;
    fs::path apps_dir = fs::canonical(drive_c / *apps_name, ec);
    if (ec || !is_inside(apps_dir, drive_c) || !fs::is_directory(apps_dir, ec)) {
        warn("C:\\" + *apps_name + " is not a folder inside drive C:: no programs published");
        return true;
    }
    Listing folders = list_folder(apps_dir);
    if (folders.truncated)
        warn("C:\\" + *apps_name + " holds more than " + std::to_string(max_folder_entries) +
             " entries: looking at some of them only");
    for (const auto& folder : folders.names) {
        auto programs = programs_in(apps_dir, *apps_name, folder, drive_c, warn);
        for (const auto& program : programs) {
            bool alone = programs.size() == 1;
            std::string text = alone ? folder : folder + "-" + program.stem;
            auto id = app_id_from_text(text);
            if (!id) {
                warn(program.windows_path + ": skipped: no usable app id in its name");
                continue;
            }
            if (!has_room(apps, sources.max_apps, program.windows_path, warn))
                return false;
            if (!id_is_free(apps, *id, program.windows_path, warn))
                continue;
            std::string name = alone ? folder : folder + " - " + program.stem;
            publish(apps, windows_app(*id, name, program, icons), warn);
        }
    }
    return true;
}

} // namespace

std::vector<InstalledApp> scan_windows_apps(const WindowsAppSources& sources,
                                            const std::function<void(std::string_view)>& warn) {
    std::error_code ec;
    if (!fs::exists(sources.prefix / "drive_c", ec))
        return {}; // an image without Wine
    auto drive_c = prefix_drive_c(sources.prefix);
    if (!drive_c) {
        warn("no Windows programs published: " + drive_c.error().message);
        return {};
    }
    std::map<std::string, InstalledApp> apps;
    IconReader icons(sources, warn);
    if (scan_apps_folder(sources, *drive_c, apps, icons, warn)) {
        auto notepad = resolve_windows_program(sources.prefix, wine_notepad_path);
        std::string id(wine_notepad_id);
        if (notepad && has_room(apps, sources.max_apps, wine_notepad_path, warn) &&
            id_is_free(apps, id, wine_notepad_path, warn)) {
            Program program{std::string(wine_notepad_path), "notepad", *notepad};
            publish(apps, windows_app(id, "Notepad", program, icons), warn);
        } else if (!notepad && notepad.error().code != Errc::not_found) {
            warn("Notepad not published: " + notepad.error().message);
        }
    }
    std::vector<InstalledApp> out;
    for (auto& [id, app] : apps)
        out.push_back(std::move(app));
    return out;
}

std::vector<InstalledApp> merge_apps(std::vector<InstalledApp> desktop_apps,
                                     std::vector<InstalledApp> windows_apps,
                                     const std::function<void(std::string_view)>& warn) {
    std::map<std::string, InstalledApp> apps;
    for (auto& app : desktop_apps) {
        std::string id = app.app.id;
        apps.try_emplace(id, std::move(app));
    }
    for (auto& app : windows_apps) {
        std::string id = app.app.id;
        std::string command = app.app.command;
        if (!apps.try_emplace(id, std::move(app)).second)
            warn(command + ": not published: the .desktop app " + id + " has that id");
    }
    std::vector<InstalledApp> out;
    for (auto& [id, app] : apps) {
        if (out.size() == max_apps) {
            warn("more than " + std::to_string(max_apps) + " apps: publishing the first ones");
            break;
        }
        out.push_back(std::move(app));
    }
    return out;
}

} // namespace heirloom::guest
