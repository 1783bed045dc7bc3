"""Headless Chromium (Debian's `chromium` and `chromium-driver` packages) driven by Selenium: the
browser of the preview page's tests (tests/test_preview_browser.py) and benchmark (preview.py here).
A browser of Selenium's or Playwright's own download does not work on our machines."""
import re
import shutil

# What a page of the preview reports back to a test: a checksum of the shown image's pixels (None
# before one has loaded), the status text, and the plot's number of points.
PAGE_STATE = """
const img = document.getElementById("image");
let sum = null;
if (img.complete && img.naturalWidth) {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  sum = 0;
  for (let i = 0; i < d.length; i += 3) sum = (sum * 31 + d[i]) >>> 0;
}
return [sum, document.getElementById("status").textContent, Number(document.getElementById("plot").dataset.points)];
"""


def address(process):
    """The page's address, read from the stderr of a run started with --preview (text mode)."""
    for line in process.stderr:
        found = re.search(r"^preview: (http://\S+)$", line.strip())
        if found:
            return found.group(1)
    raise RuntimeError(f"no preview address printed; the run exited with {process.wait()}")


def missing():
    """What is missing to run the browser, as an apt-get line, or None."""
    needed = [package for package, program in (("chromium", "chromium"), ("chromium-driver", "chromedriver"))
              if not shutil.which(program)]
    return f"apt-get install {' '.join(needed)}" if needed else None


def browser(width=1280, height=900):
    """A headless Chromium, driven by Selenium (quit() it when done)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    if missing():
        raise RuntimeError(f"the browser tests need Debian's Chromium: {missing()}")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
