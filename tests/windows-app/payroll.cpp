// Payroll: the Win32 test program of the Windows-application tests (not product code). A
// 32-bit GUI program, built with mingw-w64 and run under Wine in the guest image, that lets a
// test see from the outside what happened inside:
//   PAYROLL.EXE              a window titled "Payroll"
//   PAYROLL.EXE FILE         opens FILE: "Payroll - <its first line>" in the title and window
//   PAYROLL.EXE /copy TEXT   puts TEXT on the clipboard at start
// and whenever the clipboard changes (AddClipboardFormatListener), its text goes into the
// title and the window: "Payroll - clipboard: <text>".

// windows.h first: the other Win32 headers build on it.
// clang-format off
#include <windows.h>
#include <shellapi.h>
// clang-format on

#include <string>

namespace {

constexpr wchar_t window_class[] = L"HeirloomPayroll";
constexpr size_t title_limit = 200;

struct State {
    std::wstring title = L"Payroll";
    std::wstring body = L"No file opened.";
};

// The first line of a file as text: UTF-8 when it decodes as such, the ANSI code page if not.
std::wstring first_line(const std::wstring& path, std::wstring& error) {
    HANDLE file = CreateFileW(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL, nullptr);
    if (file == INVALID_HANDLE_VALUE) {
        error = L"Cannot open " + path + L" (error " + std::to_wstring(GetLastError()) + L")";
        return {};
    }
    char buffer[4096];
    DWORD got = 0;
    BOOL ok = ReadFile(file, buffer, sizeof buffer, &got, nullptr);
    CloseHandle(file);
    if (!ok) {
        error = L"Cannot read " + path;
        return {};
    }
    std::string line(buffer, got);
    if (line.rfind("\xEF\xBB\xBF", 0) == 0)
        line.erase(0, 3);
    line = line.substr(0, line.find_first_of("\r\n"));
    if (line.empty())
        return {};
    for (UINT page : {static_cast<UINT>(CP_UTF8), static_cast<UINT>(CP_ACP)}) {
        DWORD flags = page == CP_UTF8 ? MB_ERR_INVALID_CHARS : 0;
        int n = MultiByteToWideChar(page, flags, line.data(), static_cast<int>(line.size()),
                                    nullptr, 0);
        if (n <= 0)
            continue;
        std::wstring wide(static_cast<size_t>(n), L'\0');
        MultiByteToWideChar(page, flags, line.data(), static_cast<int>(line.size()), wide.data(),
                            n);
        return wide;
    }
    return {};
}

std::wstring clipboard_text(HWND window) {
    std::wstring text;
    if (!OpenClipboard(window))
        return text;
    if (HANDLE data = GetClipboardData(CF_UNICODETEXT)) {
        if (auto* chars = static_cast<const wchar_t*>(GlobalLock(data))) {
            text = chars;
            GlobalUnlock(data);
        }
    }
    CloseClipboard();
    return text;
}

bool set_clipboard_text(HWND window, const std::wstring& text) {
    HGLOBAL memory = GlobalAlloc(GMEM_MOVEABLE, (text.size() + 1) * sizeof(wchar_t));
    if (!memory)
        return false;
    auto* chars = static_cast<wchar_t*>(GlobalLock(memory));
    text.copy(chars, text.size());
    chars[text.size()] = L'\0';
    GlobalUnlock(memory);
    if (!OpenClipboard(window)) {
        GlobalFree(memory);
        return false;
    }
    EmptyClipboard();
    bool ok = SetClipboardData(CF_UNICODETEXT, memory) != nullptr;
    CloseClipboard();
    if (!ok)
        GlobalFree(memory);
    return ok;
}

void show(HWND window, State& state, const std::wstring& title, const std::wstring& body) {
    state.title = title.substr(0, title_limit);
    state.body = body;
    SetWindowTextW(window, state.title.c_str());
    InvalidateRect(window, nullptr, TRUE);
}

void paint(HWND window, const State& state) {
    PAINTSTRUCT ps;
    HDC dc = BeginPaint(window, &ps);
    RECT area;
    GetClientRect(window, &area);
    HBRUSH background = CreateSolidBrush(RGB(255, 250, 225));
    FillRect(dc, &area, background);
    DeleteObject(background);
    HFONT font = CreateFontW(-20, 0, 0, 0, FW_NORMAL, FALSE, FALSE, FALSE, DEFAULT_CHARSET,
                             OUT_DEFAULT_PRECIS, CLIP_DEFAULT_PRECIS, DEFAULT_QUALITY,
                             DEFAULT_PITCH, L"Tahoma");
    HGDIOBJ old = SelectObject(dc, font);
    SetBkMode(dc, TRANSPARENT);
    SetTextColor(dc, RGB(20, 60, 140));
    InflateRect(&area, -16, -16);
    std::wstring text = L"Heirloom Payroll test program\n\n" + state.body;
    DrawTextW(dc, text.c_str(), -1, &area, DT_LEFT | DT_TOP | DT_WORDBREAK | DT_NOPREFIX);
    SelectObject(dc, old);
    DeleteObject(font);
    EndPaint(window, &ps);
}

LRESULT CALLBACK window_proc(HWND window, UINT message, WPARAM wparam, LPARAM lparam) {
    auto* state = reinterpret_cast<State*>(GetWindowLongPtrW(window, GWLP_USERDATA));
    switch (message) {
    case WM_CREATE: {
        auto* create = reinterpret_cast<CREATESTRUCTW*>(lparam);
        SetWindowLongPtrW(window, GWLP_USERDATA,
                          reinterpret_cast<LONG_PTR>(create->lpCreateParams));
        AddClipboardFormatListener(window);
        return 0;
    }
    case WM_CLIPBOARDUPDATE:
        if (state) {
            std::wstring text = clipboard_text(window);
            show(window, *state, L"Payroll - clipboard: " + text, L"Clipboard: " + text);
        }
        return 0;
    case WM_PAINT:
        if (state) {
            paint(window, *state);
            return 0;
        }
        break;
    case WM_DESTROY:
        RemoveClipboardFormatListener(window);
        PostQuitMessage(0);
        return 0;
    }
    return DefWindowProcW(window, message, wparam, lparam);
}

} // namespace

int WINAPI wWinMain(HINSTANCE instance, HINSTANCE, PWSTR, int show_command) {
    WNDCLASSEXW wc{};
    wc.cbSize = sizeof wc;
    wc.lpfnWndProc = window_proc;
    wc.hInstance = instance;
    wc.hCursor = LoadCursorW(nullptr, reinterpret_cast<LPCWSTR>(IDC_ARROW));
    wc.hIcon = static_cast<HICON>(LoadImageW(instance, MAKEINTRESOURCEW(1), IMAGE_ICON, 32, 32, 0));
    wc.hIconSm =
        static_cast<HICON>(LoadImageW(instance, MAKEINTRESOURCEW(1), IMAGE_ICON, 16, 16, 0));
    wc.lpszClassName = window_class;
    if (!RegisterClassExW(&wc))
        return 1;

    State state;
    HWND window =
        CreateWindowExW(0, window_class, state.title.c_str(), WS_OVERLAPPEDWINDOW, CW_USEDEFAULT,
                        CW_USEDEFAULT, 560, 260, nullptr, nullptr, instance, &state);
    if (!window)
        return 1;

    int argc = 0;
    LPWSTR* argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (argv && argc >= 3 && lstrcmpiW(argv[1], L"/copy") == 0) {
        std::wstring text = argv[2];
        for (int i = 3; i < argc; ++i)
            text += std::wstring(L" ") + argv[i];
        if (!set_clipboard_text(window, text))
            show(window, state, L"Payroll - clipboard: (could not copy)", L"Could not copy.");
    } else if (argv && argc >= 2) {
        std::wstring error;
        std::wstring line = first_line(argv[1], error);
        if (!error.empty())
            show(window, state, L"Payroll - " + error, error);
        else
            show(window, state, L"Payroll - " + line,
                 std::wstring(L"File: ") + argv[1] + L"\nFirst line: " + line);
    }
    LocalFree(argv);

    ShowWindow(window, show_command);
    UpdateWindow(window);
    MSG msg;
    while (GetMessageW(&msg, nullptr, 0, 0) > 0) {
        TranslateMessage(&msg);
        DispatchMessageW(&msg);
    }
    return static_cast<int>(msg.wParam);
}
